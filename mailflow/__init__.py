"""mailflow: runs a safeguarding partnership's multi-agency escalation process by email."""

__version__ = "0.1.0"
