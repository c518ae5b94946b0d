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
