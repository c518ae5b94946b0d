"""Text out of attachments: .docx (python-docx), PDF (pdfplumber, pypdf), .msg, winmail.dat."""

from __future__ import annotations

import contextlib
import io
import logging
import zipfile
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime
from typing import Any

from parsers.errors import LimitExceeded
from parsers.model import ParseLimits

MAX_PDF_PAGES = 40
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Libraries that log fragments of the documents they read (personal data). They are muted for
# good, whatever -v says: their own level is set above CRITICAL (their child loggers inherit it),
# they do not propagate to the daemon's handlers, and a filter drops anything still handed to them.
_CHATTY = ("pypdf", "pdfminer", "pdfplumber", "extract_msg", "olefile", "tnefparse", "mailparser",
           "docx", "compressed_rtf", "RTFDE", "ebcdic")
_SILENT = logging.CRITICAL + 1


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


_DROP_ALL = _DropAll()


_known_loggers = [-1]


def silence_libraries() -> None:
    """Mute the document libraries' loggers (cheap when already done; re-asserted per message)."""
    for name in _CHATTY:
        lg = logging.getLogger(name)
        if lg.level != _SILENT:
            lg.setLevel(_SILENT)
        lg.propagate = False
        if _DROP_ALL not in lg.filters:
            lg.addFilter(_DROP_ALL)
    loggers = logging.root.manager.loggerDict
    if len(loggers) == _known_loggers[0]:
        return
    _known_loggers[0] = len(loggers)
    for child_name in list(loggers):
        if child_name.split(".")[0] in _CHATTY and "." in child_name:
            child = logging.getLogger(child_name)
            if child.level not in (logging.NOTSET, _SILENT):
                child.setLevel(_SILENT)      # someone set a child's level: mute it too
            child.propagate = False
            if _DROP_ALL not in child.filters:
                child.addFilter(_DROP_ALL)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    silence_libraries()
    yield


_DOCX_TYPES = {"application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
XmlElement = Any   # an lxml element of the .docx body (lxml ships no type hints)


def kind_of(filename: str, ctype: str, data: bytes) -> str:
    name = filename.lower()
    if name.endswith(".docx") or ctype in _DOCX_TYPES:
        return "docx"
    if name.endswith(".pdf") or ctype == "application/pdf" or data[:5] == b"%PDF-":
        return "pdf"
    if name.endswith(".msg") or ctype == "application/vnd.ms-outlook":
        return "msg"
    if name == "winmail.dat" or ctype == "application/ms-tnef" or data[:4] == b"\x78\x9f\x3e\x22":
        return "tnef"
    if name.endswith(".eml"):
        return "eml"
    if ctype == "text/plain" or name.endswith(".txt"):
        return "text"
    return "other"


# --- .docx -----------------------------------------------------------------------------------

def docx_text(data: bytes, limits: ParseLimits, warnings: list[str]) -> str:
    """Paragraphs and table rows (`first cell: other cells`) in order; struck runs ~~x~~."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        warnings.append("unreadable .docx attachment")
        return ""
    total = sum(i.file_size for i in infos)
    if total > limits.max_docx_uncompressed or len(infos) > 5000:
        raise LimitExceeded(
            f".docx attachment expands to {total} bytes (limit {limits.max_docx_uncompressed})")
    try:
        import docx  # python-docx

        doc = docx.Document(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - any damage inside the package
        warnings.append("unreadable .docx attachment")
        return ""
    lines: list[str] = []
    _docx_block(doc.element.body, lines)
    return "\n".join(lines)


def _run_text(r: XmlElement) -> str:
    parts: list[str] = []
    for el in r:
        tag = el.tag
        if tag == _W + "t":
            parts.append(el.text or "")
        elif tag == _W + "tab":
            parts.append("\t")
        elif tag in (_W + "br", _W + "cr"):
            parts.append("\n")
        elif tag == _W + "sym":
            char = (el.get(_W + "char") or "").upper()
            parts.append("☒" if char in ("F0FE", "F078", "2612", "F0FD") else "☐")
    text = "".join(parts)
    rpr = r.find(_W + "rPr")
    if text.strip() and rpr is not None:
        for tag in ("strike", "dstrike"):
            s = rpr.find(_W + tag)
            if s is not None and (s.get(_W + "val") or "true").lower() not in ("0", "false", "off"):
                return f"~~{text.strip()}~~ "
    return text


def _para_text(p: XmlElement) -> str:
    return "".join(_run_text(r) for r in p.iter(_W + "r"))


def _docx_block(parent: XmlElement, lines: list[str]) -> None:
    for child in parent:
        if child.tag == _W + "p":
            lines.append(_para_text(child))
        elif child.tag == _W + "tbl":
            _docx_table(child, lines)
        elif child.tag == _W + "sdt":
            content = child.find(_W + "sdtContent")
            if content is not None:
                _docx_block(content, lines)


def _cell_text(tc: XmlElement) -> str:
    parts: list[str] = []
    for el in tc:
        if el.tag == _W + "p":
            parts.append(_para_text(el))
        elif el.tag == _W + "tbl":
            sub: list[str] = []
            _docx_table(el, sub)
            parts.append(" ".join(sub))
        elif el.tag == _W + "sdt":
            content = el.find(_W + "sdtContent")
            if content is not None:
                sub = []
                _docx_block(content, sub)
                parts.append(" ".join(sub))
    return "\n".join(p for p in parts if p.strip()).strip()


def _docx_table(tbl: XmlElement, lines: list[str]) -> None:
    lines.append("")
    for tr in tbl.iter(_W + "tr"):
        if tr.getparent() is not tbl:
            continue
        cells: list[str] = []
        for tc in tr.iter(_W + "tc"):
            if tc.getparent() is not tr:
                continue
            t = _cell_text(tc)
            # Merged cells repeat their text in python-docx; raw XML does not, but be safe.
            if t and (not cells or cells[-1] != t):
                cells.append(t)
        if not cells:
            continue
        if len(cells) == 1:
            lines.append(cells[0])
        else:
            label = cells[0].replace("\n", " ").rstrip()
            sep = " " if label.endswith((":", "?")) else ": "
            lines.append(label + sep + "\n".join(cells[1:]))
    lines.append("")


# --- PDF -------------------------------------------------------------------------------------

def pdf_text(data: bytes, warnings: list[str]) -> str:
    """Text of a text PDF: bordered tables (pdfplumber) as `label: value` rows, the rest as text;
    pypdf when pdfplumber fails. Encrypted or damaged PDFs give a warning and no text."""
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            warnings.append("encrypted PDF attachment not read")
            return ""
        n_pages = len(reader.pages)
    except Exception:  # noqa: BLE001 - pypdf raises many types on damaged files
        warnings.append("unreadable PDF attachment")
        return ""
    if n_pages > MAX_PDF_PAGES:
        warnings.append(f"PDF attachment has {n_pages} pages; first {MAX_PDF_PAGES} read")
    text = _pdfplumber_text(data)
    if text is None:
        try:
            text = "\n".join((page.extract_text() or "")
                             for page in list(reader.pages)[:MAX_PDF_PAGES])
        except Exception:  # noqa: BLE001
            warnings.append("unreadable PDF attachment")
            return ""
    if not text.strip():
        warnings.append("PDF attachment has no text layer (scanned?)")
    return text


_NUMBERS = frozenset((int, float))
_PLAIN = frozenset((int, float, str, bool, type(None)))
_COLOUR_SPACES: dict[str, Any] = {}


def _read_objects(page: Any) -> None:
    """What pdfplumber's `Page.objects` holds, the same dicts, built faster and stored where
    pdfplumber caches them (its table finder and text extraction read them from there).

    pdfplumber has pdfminer make an LTChar per character, then turns each into a dict through a
    generic recursive resolver (and decodes the colour space's name character by character): most
    of a PDF form's parse time. Here the device builds each character's dict as it is drawn, with
    pdfminer's own arithmetic in its order (so every number is the same), each font's text, width
    and descent looked up once per glyph. Characters that need more (a vertical font, a byte font
    name, Unicode normalisation, layout analysis) and every other object take pdfplumber's path."""
    from pdfminer.layout import LTChar, LTContainer
    from pdfminer.pdffont import PDFUnicodeNotDefined
    from pdfminer.pdfinterp import PDFPageInterpreter
    from pdfminer.utils import apply_matrix_rect
    from pdfplumber.page import Page, PDFPageAggregatorWithMarkedContent
    from pdfplumber.utils.exceptions import PdfminerException
    from pdfplumber.utils.pdfinternals import resolve_all, resolve_and_decode

    pdf = page.pdf
    general = Page.process_object
    page_number, height, doctop = page.page_number, page.height, page.initial_doctop
    mb_x0, mb_top = page.mediabox[:2]
    fast = pdf.unicode_norm is None and pdf.laparams is None
    chars: list[dict[str, Any]] = []      # in the order drawn, as pdfplumber's walk of the layout gives
    glyphs: dict[tuple[Any, int], tuple[str, float, Any]] = {}

    def resolved(v: Any) -> Any:
        t = type(v)
        if t in _PLAIN or (t is tuple and _NUMBERS.issuperset(map(type, v))):
            return v
        return resolve_all(v)

    def colour_space(name: Any) -> Any:
        if type(name) is not str:
            return resolve_and_decode(name)
        decoded = _COLOUR_SPACES.get(name)
        if decoded is None:
            decoded = resolve_and_decode(name)
            if len(_COLOUR_SPACES) < 64:      # a hostile PDF could name thousands
                _COLOUR_SPACES[name] = decoded
        return decoded

    class Aggregator(PDFPageAggregatorWithMarkedContent):
        def render_char(self, matrix: Any, font: Any, fontsize: float, scaling: float, rise: float,
                        cid: int, ncs: Any, graphicstate: Any) -> float:
            glyph = glyphs.get((font, cid))
            if glyph is None:
                try:
                    text = font.to_unichr(cid)
                    assert isinstance(text, str), str(type(text))
                except PDFUnicodeNotDefined:
                    text = self.handle_undefined_char(font, cid)
                glyph = glyphs[(font, cid)] = (text, font.char_width(cid), font.char_disp(cid))
            text, textwidth, textdisp = glyph
            fontname = font.fontname
            if not fast or type(fontname) is not str or font.is_vertical():
                item = LTChar(matrix, font, fontsize, scaling, rise, text, textwidth, textdisp, ncs,
                              graphicstate)
                item.mcid = self.cur_mcid   # type: ignore[attr-defined]  # as pdfplumber's tag_cur_item
                item.tag = self.cur_tag     # type: ignore[attr-defined]
                chars.append(general(page, item))
                return item.adv
            # LTChar.__init__ and Page.process_object, step for step.
            adv = textwidth * fontsize * scaling
            descent = font.get_descent() * fontsize
            a, b, c, d, _e, _f = matrix
            x0, y0, x1, y1 = apply_matrix_rect(matrix, (0, descent + rise, adv, descent + rise + fontsize))
            if x1 < x0:
                x0, x1 = x1, x0
            if y1 < y0:
                y0, y1 = y1, y0
            top = (height - y1) + mb_top
            gs = graphicstate
            chars.append({
                "matrix": resolved(matrix), "fontname": fontname, "adv": adv,
                "upright": a * d * scaling > 0 and b * c <= 0,
                "x0": x0 + mb_x0 if mb_x0 != 0 else x0, "y0": y0,
                "x1": x1 + mb_x0 if mb_x0 != 0 else x1, "y1": y1,
                "width": x1 - x0, "height": y1 - y0, "size": y1 - y0,
                "mcid": resolved(self.cur_mcid), "tag": resolved(self.cur_tag),
                "object_type": "char", "page_number": page_number, "ncs": colour_space(ncs.name),
                "text": text,
                "stroking_color": gs.scolor if isinstance(gs.scolor, tuple) else (gs.scolor,),
                "non_stroking_color": gs.ncolor if isinstance(gs.ncolor, tuple) else (gs.ncolor,),
                "top": top, "bottom": (height - y0) + mb_top, "doctop": doctop + top,
            })
            return adv

    device = Aggregator(pdf.rsrcmgr, pageno=page_number, laparams=pdf.laparams)
    try:
        PDFPageInterpreter(pdf.rsrcmgr, device).process_page(page.page_obj)
    except Exception as e:
        raise PdfminerException(e) from e
    layout = device.get_result()
    objects: dict[str, list[dict[str, Any]]] = {"char": chars} if chars else {}

    def walk(items: list[Any]) -> None:    # pdfplumber's iter_layout_objects and parse_objects
        for obj in items:
            if isinstance(obj, LTContainer):
                if pdf.laparams is not None:
                    add(general(page, obj))
                walk(obj._objs)   # noqa: SLF001
            else:
                add(general(page, obj))

    def add(attr: dict[str, Any]) -> None:
        kind = attr["object_type"]
        if kind != "anno":
            objects.setdefault(kind, []).append(attr)

    walk(layout._objs)   # noqa: SLF001
    page._layout = layout     # noqa: SLF001 - what `Page.layout` caches (without the characters)
    page._objects = objects   # noqa: SLF001 - what `Page.objects` caches


def _pdfplumber_text(data: bytes) -> str | None:
    try:
        import pdfplumber

        out: list[str] = []
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages[:MAX_PDF_PAGES]:
                _read_objects(page)
                tables = page.find_tables()
                rest = page
                for t in tables:
                    rest = rest.outside_bbox(t.bbox)
                out.append(rest.extract_text() or "")
                for t in tables:
                    out.append("")
                    for row in t.extract():
                        cells = [" ".join((c or "").split()) if i == 0 else (c or "").strip()
                                 for i, c in enumerate(row)]
                        cells = [c for c in cells if c]
                        if not cells:
                            continue
                        if len(cells) == 1:
                            out.append(cells[0])
                        else:
                            sep = " " if cells[0].endswith((":", "?")) else ": "
                            out.append(cells[0] + sep + " ".join(
                                " ".join(c.split("\n")) for c in cells[1:]))
                    out.append("")
        return "\n".join(out)
    except Exception:  # noqa: BLE001 - fall back to pypdf
        return None


# --- Outlook .msg and TNEF -------------------------------------------------------------------

def msg_to_message(data: bytes, warnings: list[str]) -> Message | None:
    """An attached Outlook .msg as an email message (headers, body, attachments)."""
    if not data.startswith(_OLE_MAGIC):
        # Never hand extract-msg short bytes: olefile would take them for a file path.
        warnings.append("unreadable Outlook .msg attachment")
        return None
    try:
        import extract_msg

        opened: Any = extract_msg.openMsg(io.BytesIO(data))
        with opened as msg:
            out = EmailMessage()
            date = msg.date         # extract-msg gives a datetime (from the headers or the props)
            if isinstance(date, datetime):
                date = format_datetime(date)
            for name, value in (("From", msg.sender), ("To", msg.to), ("Cc", msg.cc),
                                ("Subject", msg.subject), ("Date", date)):
                if value:
                    try:
                        out[name] = str(value).replace("\r", " ").replace("\n", " ")
                    except Exception:  # noqa: BLE001 - keep what can be kept
                        pass
            body = msg.body or ""
            html = msg.htmlBody
            out.set_content(body)
            if html:
                out.add_alternative(html.decode("utf-8", "replace") if isinstance(html, bytes)
                                    else str(html), subtype="html")
            for a in msg.attachments:
                payload = getattr(a, "data", None)
                if isinstance(payload, bytes):
                    name = a.longFilename or a.shortFilename or "attachment"
                    out.add_attachment(payload, maintype="application",
                                       subtype="octet-stream", filename=name)
            return out
    except Exception:  # noqa: BLE001 - extract-msg raises many types on damaged files
        warnings.append("unreadable Outlook .msg attachment")
        return None


def _rtf_body(rtf: bytes, warnings: list[str]) -> tuple[str, str | None]:
    """(text, html) of an Outlook "Rich Text" body. Outlook's RTF almost always encapsulates
    the HTML or plain text it was written in (\\fromhtml1, \\fromtext): RTFDE recovers that."""
    if not rtf.startswith(b"{\\rtf"):          # tnefparse hands it back compressed without compressed_rtf
        warnings.append("winmail.dat (TNEF) body is compressed RTF that could not be unpacked")
        return "", None
    try:
        from RTFDE.deencapsulate import DeEncapsulator

        rtfde = DeEncapsulator(rtf)
        rtfde.deencapsulate()
    except Exception:  # noqa: BLE001 - RTFDE raises its own and lark's errors on RTF it can't take
        warnings.append("winmail.dat (TNEF) body is RTF that was not written from HTML or text: "
                        "not read")
        return "", None
    def text(content: bytes | str) -> str:   # RTFDE gives UTF-8, whatever the RTF's code page
        return content.decode("utf-8", "replace") if isinstance(content, bytes) else content

    if rtfde.content_type == "html":
        return "", text(rtfde.html)
    return text(rtfde.text), None


def tnef_to_message(data: bytes, warnings: list[str]) -> Message | None:
    """winmail.dat (TNEF): its body and attachments as an email message."""
    try:
        from tnefparse import TNEF

        t = TNEF(data)
        if not t.body and not t.htmlbody and not t.attachments and not getattr(
                t, "rtfbody", None):
            warnings.append("unreadable winmail.dat (TNEF) attachment")
            return None
        out = EmailMessage()
        body, html = t.body or b"", t.htmlbody
        if not body and not html and getattr(t, "rtfbody", None):
            body, html = _rtf_body(t.rtfbody, warnings)
        if isinstance(body, bytes):
            body = body.decode("cp1252", "replace")
        out.set_content(body or "")
        if html:
            out.add_alternative(html.decode("utf-8", "replace") if isinstance(html, bytes)
                                else str(html), subtype="html")
        for a in t.attachments:
            payload = a.data if isinstance(a.data, bytes) else b""
            name = a.long_filename() or a.name or "attachment"
            if isinstance(name, bytes):
                name = name.decode("cp1252", "replace")
            out.add_attachment(payload, maintype="application", subtype="octet-stream",
                               filename=str(name))
        return out
    except Exception:  # noqa: BLE001 - tnefparse raises many types on damaged files
        warnings.append("unreadable winmail.dat (TNEF) attachment")
        return None
