"""Argument parsing and dispatch for the stable `mailflow` command-line contract.

Exit codes: 0 success, 2 usage or configuration error, 1 anything else (one line on stderr),
141 when the reader of the output went away (`mailflow cases list | head -1`), as for SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mailflow.core.lifecycle import State

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command killed by SIGPIPE

# command -> "module:function"; each handler is `(args, ctx) -> int`.
HANDLERS = {
    "run": "mailflow.cli.daemon_cmd:run",
    "demo": "mailflow.cli.demo_cmd:run",
    "parse": "mailflow.cli.parse_cmd:run",
    "ingest": "mailflow.cli.ingest_cmd:run",
    "sweep": "mailflow.cli.sweep_cmd:run",
    "cases": "mailflow.cli.cases_cmd:run",
    "policy": "mailflow.cli.policy_cmd:run",
    "digest": "mailflow.cli.digest_cmd:run",
    "outbox": "mailflow.cli.outbox_cmd:run",
    "db": "mailflow.cli.db_cmd:run",
    "doctor": "mailflow.cli.doctor_cmd:run",
    "directory": "mailflow.cli.directory_cmd:run",
    "audit": "mailflow.cli.audit_cmd:run",
    "web": "mailflow.cli.web_cmd:run",
    "users": "mailflow.cli.users_cmd:run",
    "quarantine": "mailflow.cli.quarantine_cmd:run",
    "report": "mailflow.cli.report_cmd:run",
    "purge": "mailflow.cli.purge_cmd:run",
    "export-case": "mailflow.cli.export_cmd:run",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(f"usage: {message}", 2))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mailflow", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--config", metavar="PATH",
                   help="config file (else $MAILFLOW_CONFIG, else ./mailflow.toml, else the embedded default)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="-v: mailflow logs at debug level; -vv: other libraries too (never message "
                        "content: libraries that log it stay at WARNING)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def at(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--at", metavar="ISO", help="act as of this instant (ISO 8601; naive = UK time)")

    run = sub.add_parser("run", help="the daemon")
    run.add_argument("--once", action="store_true", help="one full pass (ingest, deadlines, outbox), then exit")
    at(run)

    demo = sub.add_parser("demo", help="self-contained demo of the main job, then its web console")
    demo.add_argument("--no-serve", action="store_true",
                      help="exit after the story instead of serving the console (also MAILFLOW_DEMO_NO_SERVE=1)")

    parse = sub.add_parser("parse", help="classify and extract one message, no side effects")
    parse.add_argument("file", metavar="FILE.eml")
    parse.add_argument("--format", choices=["text", "json"], default="text")

    ingest = sub.add_parser("ingest", help="feed .eml files, a Maildir or an mbox through the pipeline")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--partnership", metavar="NAME", help="which partnership receives them (default: the first)")
    at(ingest)

    sweep = sub.add_parser("sweep", help="act on deadlines due as of a time")
    at(sweep)
    sweep.add_argument("--dry-run", action="store_true", help="say what would be sent; change nothing")

    cases = sub.add_parser("cases", help="list, show and act on cases")
    csub = cases.add_subparsers(dest="cases_command", required=True, parser_class=_Parser)
    cl = csub.add_parser("list")
    cl.add_argument("--state", choices=[s.value for s in State], help="only cases in this state")
    cl.add_argument("--stage", type=int, help="only cases at this stage")
    cl.add_argument("--agency", help="only cases involving this agency (its whole name)")
    cl.add_argument("--ref", metavar="PREFIX", help="only references starting with this")
    cl.add_argument("--overdue", action="store_true", help="only cases whose next deadline has passed (by --at)")
    at(cl)
    cl.add_argument("--format", choices=["text", "json", "jsonl"], default="text",
                    help="json: one array; jsonl: one case per line (both streamed)")
    cs = csub.add_parser("show")
    cs.add_argument("ref")
    cs.add_argument("--format", choices=["text", "json"], default="text")
    cs.add_argument("--by", help="who is reading (recorded in the audit trail; default: the OS user)")
    for name, needs_text in (("escalate", True), ("resolve", True), ("note", True), ("reopen", True)):
        c = csub.add_parser(name)
        c.add_argument("ref")
        c.add_argument("text", nargs="*" if not needs_text else "+")
        c.add_argument("--by", default="business-team", help="who is acting (recorded in the audit trail)")
        at(c)
    ca = csub.add_parser("assign")
    ca.add_argument("ref")
    ca.add_argument("side", choices=["raiser", "other"])
    ca.add_argument("email")
    ca.add_argument("--by", default="business-team")
    at(ca)

    policy = sub.add_parser("policy", help="the partnership policies and their deadlines")
    psub = policy.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    psub.add_parser("list")
    ps = psub.add_parser("show")
    ps.add_argument("name")
    pt = psub.add_parser("timeline")
    pt.add_argument("name")
    pt.add_argument("--start", required=True, metavar="ISO")
    pt.add_argument("--urgent", action="store_true")
    pt.add_argument("--format", choices=["text", "json"], default="text")

    digest = sub.add_parser("digest", help="send (or preview) the business-team digests")
    at(digest)
    digest.add_argument("--preview", metavar="FILE", help="write the digest here instead of sending it")

    outbox = sub.add_parser("outbox", help="the queue of outgoing mail")
    osub = outbox.add_subparsers(dest="outbox_command", required=True, parser_class=_Parser)
    osub.add_parser("list")
    of = osub.add_parser("flush")
    at(of)

    db = sub.add_parser("db", help="the case database")
    dsub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    dsub.add_parser("upgrade")

    doctor = sub.add_parser("doctor", help="check config, database, mailbox and transport")
    doctor.add_argument("--send-test", metavar="ADDRESS", help="also send a test message to this address")

    directory = sub.add_parser("directory", help="the directory of agencies")
    dirsub = directory.add_subparsers(dest="directory_command", required=True, parser_class=_Parser)
    dirsub.add_parser("check")

    audit = sub.add_parser("audit", help="the hash-chained audit trail")
    asub = audit.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    av = asub.add_parser("verify", help="detect any edited, inserted or deleted event")
    av.add_argument("--partnership", metavar="NAME", help="only this partnership's chain")

    web = sub.add_parser("web", help="the business team's web console")
    web.add_argument("--listen", metavar="HOST:PORT", help="where to listen (default 127.0.0.1:8080, or [web] listen)")

    users = sub.add_parser("users", help="the web console's local accounts")
    usub = users.add_subparsers(dest="users_command", required=True, parser_class=_Parser)
    ua = usub.add_parser("add", help="add an account; prints a one-time password (or reads one from stdin)")
    ua.add_argument("email")
    ua.add_argument("--role", required=True, choices=["viewer", "team", "admin"])
    ua.add_argument("--name", help="the name shown in the console")
    ua.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    ua.add_argument("--replace", action="store_true", help="set a new password and role for an existing account")
    ur = usub.add_parser("remove", help="remove an account (its sessions end)")
    ur.add_argument("email")
    usub.add_parser("list")

    quarantine = sub.add_parser("quarantine", help="review what mailflow would not act on")
    qsub = quarantine.add_subparsers(dest="quarantine_command", required=True, parser_class=_Parser)
    ql = qsub.add_parser("list")
    ql.add_argument("--partnership", metavar="NAME")
    ql.add_argument("--all", action="store_true", help="discarded messages too")
    for name in ("show", "release", "discard"):
        q = qsub.add_parser(name)
        q.add_argument("id", type=int, metavar="ID")
        q.add_argument("--by", help="who is acting (recorded in the audit trail; default: the OS user)")
        if name == "show":
            q.add_argument("--raw", metavar="FILE", help="also write the raw message to FILE")
        else:
            q.add_argument("--reason", required=name == "discard", metavar="TEXT",
                           help="why (kept with the message and in the audit trail)")
        at(q)

    report = sub.add_parser("report", help="the Board report over the cases opened in a period")
    report.add_argument("--from", dest="date_from", required=True, metavar="DATE", help="first day (YYYY-MM-DD)")
    report.add_argument("--to", dest="date_to", required=True, metavar="DATE", help="last day (YYYY-MM-DD)")
    report.add_argument("--partnership", metavar="NAME", help="one partnership (default: all)")
    report.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    report.add_argument("--output", metavar="FILE", help="write here (CSV default: standard output)")
    at(report)

    purge = sub.add_parser("purge", help="remove what is past the retention period (counts are kept)")
    purge.add_argument("--dry-run", action="store_true", help="say what would be removed; change nothing")
    purge.add_argument("--by", help="who is purging (recorded in the audit trail; default: the OS user)")
    at(purge)

    export = sub.add_parser("export-case", help="everything held about a case (subject-access request)")
    export.add_argument("ref")
    export.add_argument("--output", metavar="DIR", help="where to write REF.zip (default: here)")
    export.add_argument("--folder", action="store_true", help="write the folder REF/ instead of a zip")
    export.add_argument("--by", help="who is exporting (recorded in the audit trail; default: the OS user)")
    at(export)
    return p


def _fail(message: str, code: int) -> int:
    print(f"mailflow: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    # Imported once the command is known (`--help` and usage errors never need them); each command's
    # own module is imported only when that command runs (HANDLERS).
    import logging

    from mailflow.cli.context import CliContext
    from mailflow.errors import MailflowError
    from mailflow.logging_setup import configure_logging, error_summary

    configure_logging(args.verbose)
    module_name, func_name = HANDLERS[args.command].split(":")
    ctx = CliContext(config_path=args.config, at=getattr(args, "at", None))
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        code = int(handler(args, ctx) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _reader_went_away()
    except MailflowError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 1)
    except Exception as exc:  # the contract is one line, never a traceback
        logging.getLogger("mailflow").debug("unhandled error", exc_info=True)
        return _fail(error_summary(exc), 1)   # a database error's own text carries its parameters
    finally:
        ctx.close()


def _reader_went_away() -> int:
    """The output's reader closed the pipe: stop quietly (the Python docs' recipe: point stdout
    at devnull so the interpreter's final flush does not fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
