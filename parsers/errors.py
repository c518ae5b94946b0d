"""Internal signal that a parse limit was passed (the message is then rejected)."""


class LimitExceeded(Exception):
    """A ParseLimits bound was passed; str(exc) is the reason recorded."""
