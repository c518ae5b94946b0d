"""Email parsing for mailflow: normalisation, classification, form and reply extraction."""

from parsers.model import Command, ParsedMessage, ParseLimits

__all__ = ["Command", "ParseLimits", "ParsedMessage", "parse_message"]


def parse_message(raw: bytes, limits: ParseLimits | None = None) -> ParsedMessage:
    """Classify and extract one raw RFC 5322 message; never raises (parsers/parse.py).

    The parser (bs4, lxml, pdfplumber, python-docx behind it) is imported on the first call, not
    with the package: every command reads the config, which needs only ParseLimits, and most
    commands parse nothing."""
    from parsers.parse import parse_message as parse

    return parse(raw, limits)
