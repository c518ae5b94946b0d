"""The key that signs reply tokens: loaded at start-up, refused when missing, empty or short.

Where it comes from, in order: `[mailflow] secret_env` (an environment variable), `secret_file`,
else `var/secret.key`, which mailflow creates (64 hex characters, mode 0600) on first start.
A key must be at least MIN_SECRET_CHARS characters: 32 random hex characters carry 128 bits.
Generate one with `python -c "import secrets; print(secrets.token_hex(32))"`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mailflow.config import Config
from mailflow.errors import ConfigError
from mailflow.private_files import create_private_once

MIN_SECRET_CHARS = 32
_HOW = 'generate one with: python -c "import secrets; print(secrets.token_hex(32))"'


def load_secret_key(config: Config) -> bytes:
    """The reply-token key, or ConfigError (one line naming the file and key) - fail closed."""
    where = f"{config.source_name}: [mailflow]"
    if config.secret_env:
        value = os.environ.get(config.secret_env)
        if value is None:
            raise ConfigError(f"{where} secret_env: environment variable {config.secret_env} is not set")
        return _long_enough(value.strip().encode(), f"{where} secret_env: {config.secret_env}")
    path = config.secret_file or default_secret_path(config)
    if config.secret_file is None and not path.exists():
        try:
            create_private_once(path, secrets.token_hex(32).encode() + b"\n")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot create the reply-token key {path} ({exc.strerror}); "
                              f"set secret_env or secret_file") from None
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{where} secret_file: cannot read {path} ({exc.strerror})") from None
    return _long_enough(key, f"{where} secret_file: {path}")


def default_secret_path(config: Config) -> Path:
    return config.var_dir / "secret.key"


def _long_enough(key: bytes, what: str) -> bytes:
    if not key:
        raise ConfigError(f"{what} is empty: the reply-token key must be at least "
                          f"{MIN_SECRET_CHARS} characters ({_HOW})")
    if len(key) < MIN_SECRET_CHARS:
        raise ConfigError(f"{what} is {len(key)} characters: the reply-token key must be at least "
                          f"{MIN_SECRET_CHARS} ({_HOW})")
    return key
