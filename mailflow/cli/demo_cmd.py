"""`mailflow demo`: the self-contained demo of the main job (see mailflow/demo.py)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os

from mailflow.cli.context import CliContext
from mailflow.errors import MailflowError

# The demo's IMAP and SMTP servers come with the `[demo]` extra, not with the daemon.
DEMO_PACKAGES = ("pymap", "aiosmtpd")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    missing = [name for name in DEMO_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise MailflowError(f"the demo needs {' and '.join(missing)} (the [demo] extra): "
                            "pip install 'mailflow[demo]', or `make run` from a clone")
    from mailflow.demo import run_demo

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the demo prints its own account
    serve = not args.no_serve and os.environ.get("MAILFLOW_DEMO_NO_SERVE", "") in ("", "0")
    return run_demo(serve=serve and importlib.util.find_spec("starlette") is not None)
