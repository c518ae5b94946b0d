"""Fixtures: real servers on 127.0.0.1 (pymap in-process, Dovecot if installed, aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import itertools
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailflow.connectors import MemorySyncStateStore
from mailflow.demo_servers import LoopbackImapServer, start_imap_server
from mailflow.sources.imap import ImapSettings, ImapSource
from tests.servers.dovecot import dovecot_binary, start_dovecot_server

USER, PASSWORD = "sab@example.org", "s3cret-pw"
_counter = itertools.count(1)


def make_mail(n: int | None = None, size: int = 0) -> tuple[str, bytes]:
    """A small RFC 5322 message with a unique Message-ID; `size` pads the body."""
    n = n if n is not None else next(_counter)
    mid = f"<test-{n}-{id(object())}@mailflow.test>"
    body = ("x" * 76 + "\r\n") * (size // 78 + 1) if size else "Hello.\r\n"
    raw = (f"From: a@example.org\r\nTo: sab@example.org\r\nSubject: test {n}\r\n"
           f"Message-ID: {mid}\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\n{body}").encode()
    return mid, raw


@pytest.fixture
def pymap_server() -> Iterator[LoopbackImapServer]:
    server = start_imap_server(USER, PASSWORD)
    yield server
    server.stop()


@pytest.fixture
def dovecot_server() -> Iterator[object]:
    if dovecot_binary() is None:
        pytest.skip("dovecot binary not installed (apt-get install dovecot-imapd; .ci/run does)")
    server = start_dovecot_server(USER, PASSWORD)
    assert server is not None
    yield server
    server.close()


@pytest.fixture(params=["pymap", pytest.param("dovecot", marks=pytest.mark.dovecot)])
def imap_server(request: pytest.FixtureRequest) -> object:
    """Each IMAP test runs against pymap (Exchange-like) and Dovecot."""
    return request.getfixturevalue(f"{request.param}_server")


def imap_source(server: object, store: MemorySyncStateStore | None = None,
                cls: type[ImapSource] = ImapSource, **overrides: object) -> ImapSource:
    options: dict[str, object] = {"tls": "none", "timeout": 5, **overrides}
    settings = ImapSettings(host=server.host, port=server.port,  # type: ignore[attr-defined]
                            username=USER, **options)  # type: ignore[arg-type]
    return cls(settings, password=PASSWORD, state_store=store or MemorySyncStateStore())


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (cert, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*tls_files)
    return ctx


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))
