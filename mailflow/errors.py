"""Errors that reach the user as one clear line (the CLI maps them to exit codes)."""


class MailflowError(Exception):
    """Anything mailflow explains to the user in one line; exit code 1."""

    exit_code = 1


class ConfigError(MailflowError):
    """Bad configuration or usage: names the file, the key and what is wrong; exit code 2."""

    exit_code = 2


class PolicyError(ConfigError):
    """A policy file that does not validate."""


class NotBuiltYet(MailflowError):
    """A command of the stable CLI contract whose implementation has not landed yet."""


def unknown_key_message(key: str, allowed: set[str] | frozenset[str]) -> str:
    """`unknown key 'adress' (did you mean 'address'?)`; a secret written into the file is refused."""
    import difflib

    if f"{key}_env" in allowed:
        return f"'{key}' must not be in the file; use '{key}_env' or '{key}_file'"
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
    return f"unknown key {key!r} ({hint})"
