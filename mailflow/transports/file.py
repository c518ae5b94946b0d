"""Writes each outgoing message as an `.eml` file: the embedded default's transport.

The folder is created 0700 and each file 0600 (they hold personal data), written atomically.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailflow.connector_options import FileOptions, read_options
from mailflow.connectors import ConnectorEnv
from mailflow.private_files import make_private_dir, write_private_atomic
from mailflow.transports.base import MailTransport, OutgoingMail

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FileTransport(MailTransport):
    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        make_private_dir(directory)

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> FileTransport:
        options = read_options(FileOptions, options, env.where)   # every key and type (connector_options.py)
        return cls(env.path(str(options.get("path", "var/outbox"))))

    def path_for(self, message_id: str) -> Path:
        # The Message-ID carries the case reference and a nonce: no personal data in file names.
        return self.directory / (_UNSAFE.sub("_", message_id.strip("<>")) + ".eml")

    def send(self, mail: OutgoingMail) -> None:
        envelope = f"X-Envelope-From: {mail.envelope_from}\r\nX-Envelope-To: {', '.join(mail.recipients)}\r\n"
        write_private_atomic(self.path_for(mail.message_id), envelope.encode() + mail.raw)

    def already_sent(self, message_id: str) -> bool | None:
        return self.path_for(message_id).exists()
