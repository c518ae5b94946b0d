"""`mailflow users add EMAIL --role viewer|team|admin [--password-stdin] [--replace] | remove EMAIL | list`:
the web console's local accounts. A new password is generated and printed once, or read from
standard input; only its argon2 hash is kept. There is no default account."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select

from mailflow.cli.context import CliContext
from mailflow.errors import ConfigError, MailflowError


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from mailflow.db.models import WebUser
    from mailflow.pipeline.audit import append_event, reader
    from mailflow.web.accounts import AccountError, add_local_user, generate_password, remove_user
    from mailflow.web.console import home_partnership

    app, now = ctx.app, ctx.clock.now()
    try:
        if args.users_command == "list":
            with app.db.transaction() as s:
                users = s.scalars(select(WebUser).order_by(WebUser.email)).all()
                for u in users:
                    state = "" if u.active else "  (removed)"
                    print(f"{u.email:40} {u.role:7} {u.kind:6}{state}")
                if not users:
                    print("no console users")
            return 0
        if args.users_command == "remove":
            with app.db.transaction() as s:
                if not remove_user(s, args.email):
                    raise MailflowError(f"no console user {args.email}")
                append_event(s, now, reader(), "user_removed", partnership=home_partnership(app),
                             email=args.email.lower())
            print(f"{args.email}: removed (signed out everywhere)")
            return 0
        generated = not args.password_stdin
        password = generate_password() if generated else sys.stdin.readline().rstrip("\r\n")
        with app.db.transaction() as s:
            user = add_local_user(s, args.email, args.role, password, now, name=args.name, replace=args.replace)
            append_event(s, now, reader(), "user_added", partnership=home_partnership(app),
                         email=user.email, role=user.role)
            email, role = user.email, user.role
    except AccountError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{email}: {role} account {'updated' if args.replace else 'added'}")
    if generated:
        print(f"one-time password (shown once, not stored): {password}")
    return 0
