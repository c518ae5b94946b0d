"""Jinja2 rendering of email templates: subject, text and HTML (autoescaped) per kind.

A kind `acknowledgement` is three files: `acknowledgement.subject.j2`, `acknowledgement.txt.j2`,
`acknowledgement.html.j2`. Directories earlier in the list override later ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from mailflow.core.humanize import local_iso, long_instant, short_day


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, template_dirs: Sequence[Path]) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in template_dirs]),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Each template read once per process (a change to one needs a restart), not its file
            # looked at on disk at every notice: a sweep renders hundreds (about 3% of its time).
            auto_reload=False,
        )
        self.env.filters.update(long_instant=long_instant, short_day=short_day, local_iso=local_iso)

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedMail:
        subject = self.env.get_template(f"{kind}.subject.j2").render(context)
        return RenderedMail(
            subject=" ".join(subject.split()),  # one line, whatever the template's layout
            text=self.env.get_template(f"{kind}.txt.j2").render(context),
            html=self.env.get_template(f"{kind}.html.j2").render(context),
        )

    def kinds(self) -> list[str]:
        names = self.env.list_templates(extensions=["j2"])
        return sorted({n.split(".")[0] for n in names if not n.startswith("_")})
