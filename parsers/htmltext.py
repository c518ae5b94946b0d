"""HTML to plain text that keeps table rows as `label: value` lines, and HTML quote cutting."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from bs4.element import Comment, NavigableString, Tag

_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr",
    "blockquote", "pre", "hr", "section", "article", "header", "footer", "dl", "dt", "dd",
}
_SKIP = {"script", "style", "head", "title", "meta", "xml", "o:p"}
_STRIKE = {"s", "strike", "del"}
_STRIKE_STYLE = re.compile(r"line-through", re.I)

# Where Outlook, OWA, Gmail, Apple Mail and Thunderbird start the quoted history in HTML.
_QUOTE_MARKERS = re.compile(
    r"""id=["']?divRplyFwdMsg"""
    r"""|border-top:\s*solid\s+#E1E1E1"""
    r"""|class=["']?gmail_quote"""
    r"""|<blockquote[^>]*type=["']?cite"""
    r"""|class=["']?moz-cite-prefix"""
    r"""|id=["']?(?:appendonsend|x_divRplyFwdMsg)""",
    re.I,
)


def cut_html_quote(html: str) -> tuple[str, bool]:
    """The HTML before the first quoted-history marker, and whether one was found."""
    m = _QUOTE_MARKERS.search(html)
    if not m:
        return html, False
    start = html.rfind("<", 0, m.start())
    # OWA puts an <hr> just before divRplyFwdMsg; drop it with the quote.
    cut = html[: max(start, 0)]
    cut = re.sub(r"<hr[^>]*>\s*$", "", cut, flags=re.I)
    return cut, True


def _soup(html: str) -> BeautifulSoup:
    try:
        return BeautifulSoup(html, "lxml")
    except Exception:  # noqa: BLE001 - fall back to the pure-Python parser
        return BeautifulSoup(html, "html.parser")


def html_to_text(html: str) -> str:
    """Readable text; each table row becomes `first cell: other cells`; struck text `~~x~~`."""
    soup = _soup(html)
    out: list[str] = []
    _walk(soup, out, strike=False)
    text = "".join(out)
    text = text.replace("\xa0", " ")
    text = re.sub(r"[ \t\r\f\v]+\n", "\n", text)
    text = re.sub(r"\n[ \t]+", "\n", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _is_struck(tag: Tag) -> bool:
    if tag.name in _STRIKE:
        return True
    style = tag.get("style")
    return bool(style and _STRIKE_STYLE.search(str(style)))


def _inline_text(node: Tag, strike: bool) -> str:
    parts: list[str] = []
    _walk(node, parts, strike)
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _walk(node: Tag, out: list[str], strike: bool) -> None:
    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            s = re.sub(r"\s+", " ", str(child))
            if s.strip() and strike:
                s = f"~~{s.strip()}~~ "
            out.append(s)
            continue
        if not isinstance(child, Tag):
            continue
        name = (child.name or "").lower()
        if name in _SKIP:
            continue
        if name == "input" and str(child.get("type", "")).lower() in ("checkbox", "radio"):
            out.append(" ☒ " if child.has_attr("checked") else " ☐ ")
            continue
        if name == "table":
            _table(child, out, strike)
            continue
        if name == "br":
            out.append("\n")
            continue
        block = name in _BLOCK
        if block:
            out.append("\n")
        _walk(child, out, strike or _is_struck(child))
        if block:
            out.append("\n")


def _within(node: Tag, names: set[str], stop: str) -> list[Tag]:
    """Descendants of `node` named in `names`, in document order, not looking inside any `stop`
    element below it: one pass, where find_all + find_parent per hit searched again and again."""
    found: list[Tag] = []
    pending = [c for c in reversed(node.contents) if isinstance(c, Tag)]
    while pending:
        tag = pending.pop()
        if tag.name in names:
            found.append(tag)
        if tag.name != stop:
            pending.extend(c for c in reversed(tag.contents) if isinstance(c, Tag))
    return found


def _table(table: Tag, out: list[str], strike: bool) -> None:
    out.append("\n")
    # Rows of nested tables are handled by their own table; a row's cells are those whose
    # nearest row is it.
    for row in _within(table, {"tr"}, stop="table"):
        cells = _within(row, {"td", "th"}, stop="tr")
        texts = []
        for c in cells:
            if c.find("table"):
                inner: list[str] = []
                _walk(c, inner, strike)
                texts.append(" ".join("".join(inner).split()))
            else:
                texts.append(_inline_text(c, strike or _is_struck(c)))
        texts = [t for t in texts if t]
        if not texts:
            continue
        if len(texts) == 1:
            out.append(texts[0] + "\n")
        else:
            label = texts[0].rstrip()
            sep = " " if label.endswith((":", "?")) else ": "
            out.append(label + sep + " ".join(texts[1:]) + "\n")
    out.append("\n")
