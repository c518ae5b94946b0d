"""Replies: which case (thread, reply token, subject), the new text, and the commands in it."""

from __future__ import annotations

import re

from parsers.htmltext import cut_html_quote, html_to_text
from parsers.model import Command

REF = r"[A-Z][A-Z0-9]{1,9}-\d{4}-\d{4,}"
_REF_RE = re.compile(rf"(?<![A-Za-z0-9-])({REF})(?![0-9])")
# mailflow's own Message-IDs: <SSP-2026-0007.3f9a1c2b7d@mailflow.example>
_OWN_MSGID = re.compile(rf"^<({REF})\.([0-9a-f]{{6,}})@[^<>@\s]+>$", re.I)
# Reply token in a plus address: local+SSP-2026-0007.<stage>.<yyyymmdd>.<hexsig>@domain, or the
# first format without stage and expiry, local+SSP-2026-0007.<hexsig>@domain.
_TOKEN = re.compile(rf"^[^+@\s]+\+(({REF})((?:\.\d{{1,2}}\.\d{{8}})?\.[0-9a-fA-F]{{6,}}))@", re.I)

KNOWN_COMMANDS = ("resolved", "escalate", "confirmed", "extend", "urgent", "withdraw", "note")
_NEEDS_TEXT = {"resolved": "an agreed outcome", "escalate": "a reason", "withdraw": "a reason",
               "note": "text"}
_CMD_LINE = re.compile(r"^[ \t]*#([A-Za-z][A-Za-z_-]*)\b[:\s]*(.*)$")
# A sign-off ends a command's text even without a blank line before it.
_SIGN_OFF = re.compile(
    r"^\s*(?:kind regards|regards|best regards|best wishes|many thanks|thanks|thank you|cheers"
    r"|sent from my|get outlook for)\b[\s,.!]*", re.I)


def ref_from_msgid(msgid: str | None) -> str | None:
    if not msgid:
        return None
    m = _OWN_MSGID.match(msgid.strip())
    return m.group(1).upper() if m else None


def case_from_thread(in_reply_to: str | None, references: list[str]) -> str | None:
    """The case of the mailflow message this one answers (In-Reply-To, then newest Reference)."""
    for msgid in [in_reply_to, *reversed(references)]:
        ref = ref_from_msgid(msgid)
        if ref:
            return ref
    return None


def token_from_addresses(addresses: list[str]) -> tuple[str, str] | None:
    """(token, case_ref) from the first plus-address carrying one; the engine checks the MAC."""
    for addr in addresses:
        m = _TOKEN.match(addr.strip())
        if m:
            return m.group(2).upper() + m.group(3).lower(), m.group(2).upper()
    return None


def ref_from_subject(subject: str) -> str | None:
    m = _REF_RE.search(subject or "")
    return m.group(1) if m else None


# --- new text ----------------------------------------------------------------------------------

# Every pattern here runs in linear time: no `\s` that can run across lines, no nested quantifiers.
_ORIGINAL_MARKERS = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*(?:Original Message|Forwarded message|Ursprüngliche Nachricht)[ \t]*-{2,}"
    r"|_{10,}|Begin forwarded message:"
    r"|On [^\n]{4,200}wrote:[ \t]*$"
    r"|From:[ \t][^\n]+$(?=\n[ \t]*(?:Sent|Date):))",
    re.I | re.M,
)
# What mail-parser-reply is given: its patterns backtrack on long runs of blank lines and long
# lines (a 20 KB run of blank lines took 99 s), so it sees tidied text of bounded size. The reply's
# own text comes first, so a cut keeps it.
REPLY_PARSER_MAX_CHARS = 32_000
REPLY_PARSER_MAX_LINE = 2_000


def new_text_of(text: str, html: str, max_chars: int = REPLY_PARSER_MAX_CHARS) -> tuple[str, list[str]]:
    """The reply's own text (quotes, history and signature removed) and any warnings."""
    warnings: list[str] = []
    if text.strip():
        return _strip_text(text, max_chars, warnings), warnings
    if html.strip():
        cut, _ = cut_html_quote(html)
        rendered = html_to_text(cut)
        return _strip_text(rendered, max_chars, warnings), warnings
    return "", warnings


def _drop_quoted_lines(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(">")).strip()


def bounded_text(text: str, max_chars: int, max_line: int = REPLY_PARSER_MAX_LINE) -> tuple[str, bool]:
    """Trailing spaces dropped, runs of blank lines made one, lines and the whole cut to size
    (linear time); and whether anything but whitespace was cut."""
    lines: list[str] = []
    size = 0
    cut = False
    blank = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip()
        if not line:
            if blank:
                continue
            blank = True
        else:
            blank = False
        if len(line) > max_line:
            line, cut = line[:max_line], True
        if size + len(line) + 1 > max_chars:
            cut = True
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines), cut


def _strip_text(text: str, max_chars: int, warnings: list[str]) -> str:
    text, cut = bounded_text(text, max_chars)
    if cut:
        warnings.append(f"reply text cut to {max_chars} characters before quote stripping")
    try:
        from mailparser_reply import EmailReplyParser

        mail = EmailReplyParser(languages=["en", "de", "fr"]).read(text)
        first = mail.replies[0] if mail.replies else None
        new = first.body if first is not None else text
        # The library keeps the header line of a leading quote; a reply that is only quote is empty.
        if first is not None and first.headers and not mail.replies[0].content.strip():
            new = ""
    except Exception:  # noqa: BLE001 - fall back to the simple cut below
        new = text
    m = _ORIGINAL_MARKERS.search(new)
    if m:
        new = new[: m.start()]
    return _drop_quoted_lines(new)


# --- commands ----------------------------------------------------------------------------------

# What mailflow itself writes after a command in its "How to answer" help (templates/_base.*.j2,
# final_alert.*): a command carrying it was copied, not meant. tests/engine/test_commands.py checks
# that every placeholder in the bundled templates is recognised here.
_PLACEHOLDER = re.compile(r"^<\s*(?:(?:the\s+)?(?:agreed\s+)?outcome|reason|n|text)\s*>", re.I)
_HELP_TEXT = {"confirmed": "the outcome has been confirmed in writing",
              "urgent": "the adult is at risk: use the policy's urgent timescales"}


def _is_placeholder(command: Command) -> bool:
    text = " ".join(command.text.split()).lower()
    help_text = _HELP_TEXT.get(command.name)
    return bool(_PLACEHOLDER.match(text)) or (help_text is not None and text.startswith(help_text))


def extract_commands(new_text: str) -> tuple[list[Command], list[str]]:
    """Commands at the start of a line; a command's text runs on until a blank line or the next.

    Unknown commands are ignored with a warning; `#extend` needs a number of days first.
    Commands that cannot be meant are kept but marked `refused` (the engine refuses them and
    says why): one whose text is mailflow's own placeholder (`#resolved <the agreed outcome>`),
    and #resolved together with #escalate (ambiguous: neither applies). Placeholders are set
    aside first, so a copied help line does not make a genuine command ambiguous.
    """
    commands: list[Command] = []
    warnings: list[str] = []
    current: Command | None = None
    for line in new_text.splitlines():
        m = _CMD_LINE.match(line)
        if m:
            name = m.group(1).lower()
            text = m.group(2).strip()
            current = None
            if name not in KNOWN_COMMANDS:
                warnings.append(f"unknown command #{name} ignored")
                continue
            current = Command(name=name, text=text)
            commands.append(current)
            continue
        if not line.strip() or _SIGN_OFF.match(line):
            current = None
        elif current is not None and current.name in _NEEDS_TEXT:
            current.text = (current.text + "\n" + line.strip()).strip()
    kept: list[Command] = []
    for c in commands:
        if _is_placeholder(c):
            c.refused = "placeholder"
            warnings.append(f"#{c.name} carries mailflow's placeholder, not a real text")
        elif c.name == "extend":
            m = re.match(r"^(\d{1,2})\b\s*(?:working\s+days?|days?)?\s*[:,\-–]?\s*(.*)$", c.text,
                         re.I | re.S)
            if m and int(m.group(1)) > 0:
                c.text = f"{int(m.group(1))} {m.group(2).strip()}".strip()
            else:
                # Kept, so the engine can tell the sender what was wrong.
                warnings.append("#extend needs a number of working days first")
        elif c.name in _NEEDS_TEXT and not c.text:
            warnings.append(f"#{c.name} without {_NEEDS_TEXT[c.name]}")
        kept.append(c)
    names = {c.name for c in kept if c.refused is None}
    if "resolved" in names and "escalate" in names:
        warnings.append("both #resolved and #escalate given")
        for c in kept:
            if c.name in ("resolved", "escalate") and c.refused is None:
                c.refused = "ambiguous"
    if "withdraw" in names and len(names) > 1:
        warnings.append("#withdraw given with other commands")
    return kept, warnings
