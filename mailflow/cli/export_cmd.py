"""`mailflow export-case REF [--output DIR] [--folder]`: everything held about a case for a
subject-access request, written as DIR/REF.zip (or the folder DIR/REF/), owner-only, named by
the reference alone. The export is itself an audit event (who, when)."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from mailflow.cli.context import CliContext
from mailflow.errors import MailflowError
from mailflow.pipeline.audit import reader
from mailflow.pipeline.case_export import export_case
from mailflow.private_files import create_private_file, make_private_dir


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.app.db.transaction() as s:
        export = export_case(s, args.ref, reader(args.by), ctx.clock.now())
    out = Path(args.output or ".")
    if args.folder:
        target = out / export.reference
        if target.exists():
            raise MailflowError(f"{target} exists: not overwritten")
        for name, data in export.files.items():
            path = target / name
            make_private_dir(path.parent)
            create_private_file(path)
            path.write_bytes(data)
    else:
        target = out / f"{export.reference}.zip"
        if target.exists():
            raise MailflowError(f"{target} exists: not overwritten")
        make_private_dir(out)
        create_private_file(target)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, data in export.files.items():
                z.writestr(f"{export.reference}/{name}", data)
    print(f"wrote {target} ({len(export.files)} files)")
    return 0
