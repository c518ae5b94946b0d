"""Dovecot 2.3 unprivileged on a high loopback port, when the `dovecot` binary is installed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from mailflow.demo_servers import HOST, LoopbackImapServer, free_port

# What Dovecot 2.3 advertises after login by default; `imap_capability` can only replace it whole.
DOVECOT_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS "
    "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS "
    "LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH "
    "LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ "
    "NOTIFY")


class DovecotServer:
    """Dovecot 2.3 as the current user on a high loopback port, passwd-file auth, temp Maildir.

    It has CONDSTORE/QRESYNC/MOVE and custom keywords: the other end of the range.
    `without` drops capabilities from what it advertises after login (e.g. MOVE, as on older
    servers). `oauth2_introspection_url` also lets the user log in with XOAUTH2/OAUTHBEARER, the
    token checked by POSTing it there (RFC 7662 introspection answering `active`, `username`).
    """

    def __init__(self, binary: str, user: str, password: str, *, without: tuple[str, ...] = (),
                 oauth2_introspection_url: str | None = None) -> None:
        import tempfile

        self.host = HOST
        self.port = free_port()
        self.user = user
        self.password = password
        # Its own directory under /tmp: when run as root, Dovecot's unprivileged processes
        # must be able to reach it (pytest's tmp_path is inside a 0700 directory).
        self.root = Path(tempfile.mkdtemp(prefix="mailflow-dovecot-"))
        self._binary = binary
        self._without = {c.upper() for c in without}
        self._introspection_url = oauth2_introspection_url
        self._conf = self._write_config()
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    def _write_config(self) -> Path:
        import grp
        import pwd

        r = self.root
        for d in ("run", "state", "mail", "home"):
            (r / d).mkdir(parents=True, exist_ok=True)
        uid, gid = os.getuid(), os.getgid()
        uname, gname = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
        login_user = uname
        if uid == 0:
            # Dovecot refuses root for login and mail processes: use the package's users.
            login_user = "dovenull" if _user_exists("dovenull") else "nobody"
            mail_user = "dovecot" if _user_exists("dovecot") else "nobody"
            entry = pwd.getpwnam(mail_user)
            uid, gid = entry.pw_uid, entry.pw_gid
            for d in ("mail", "home"):
                os.chown(r / d, uid, gid)
            r.chmod(0o755)
        (r / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::"
                                  f"{r}/home/{self.user}::\n")
        mechanisms, oauth2_passdb = "plain login", ""
        if self._introspection_url:
            mechanisms += " xoauth2 oauthbearer"
            (r / "oauth2.conf.ext").write_text(
                f"introspection_mode = post\nintrospection_url = {self._introspection_url}\n"
                f"force_introspection = yes\nusername_attribute = username\n"
                f"active_attribute = active\nactive_value = true\n")
            oauth2_passdb = (f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                             f"  args = {r}/oauth2.conf.ext\n}}\n")
        capability = ""
        if self._without:
            advertised = [c for c in DOVECOT_CAPABILITIES.split() if c.upper() not in self._without]
            capability = f"  imap_capability = {' '.join(advertised)}\n"
        conf = r / "dovecot.conf"
        conf.write_text(f"""\
protocols = imap
listen = {HOST}
base_dir = {r}/run
state_dir = {r}/state
instance_name = mailflow-test-{self.port}
log_path = {r}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
# Tests log in wrongly on purpose: no failure delay, and no anvil penalty (listener mode 0).
auth_failure_delay = 0 secs
default_internal_user = {uname}
default_internal_group = {gname}
default_login_user = {login_user}
mail_location = maildir:{r}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {r}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
  user = {login_user}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  user = {uname}
}}
service auth-worker {{
  user = {uname}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
shutdown_clients = yes
protocol imap {{
  imap_idle_notify_interval = 1 secs
{capability}}}
""")
        return conf

    def start(self) -> None:
        # Its own process group, so that stop() can end every child (imap processes included).
        self._proc = subprocess.Popen([self._binary, "-F", "-c", str(self._conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                log = (self.root / "dovecot.log")
                raise RuntimeError(f"dovecot exited: {err} "
                                   f"{log.read_text() if log.exists() else ''}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening within 10 s")

    def stop(self, graceful: bool = False) -> None:
        """End the server and every client connection (SIGKILL to the group unless graceful)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if graceful and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self, downtime: float = 0.0, graceful: bool = False) -> None:
        """A real restart: the processes end (connections with them), the Maildir stays."""
        self.stop(graceful)
        if downtime:
            time.sleep(downtime)
        self.start()

    def drop_connections(self) -> None:
        self.restart()

    client = LoopbackImapServer.client
    append = LoopbackImapServer.append
    append_many = LoopbackImapServer.append_many
    uids = LoopbackImapServer.uids
    messages = LoopbackImapServer.messages
    recreate_folder = LoopbackImapServer.recreate_folder

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None)


def start_dovecot_server(user: str, password: str, **options: Any) -> DovecotServer | None:
    """None when the `dovecot` binary is not installed; `options` as DovecotServer takes them."""
    binary = dovecot_binary()
    if binary is None:
        return None
    return DovecotServer(binary, user, password, **options)
