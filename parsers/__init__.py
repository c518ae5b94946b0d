"""Email parsing for mailflow: normalisation, classification, form and reply extraction."""

from parsers.model import Command, ParsedMessage, ParseLimits
from parsers.parse import parse_message

__all__ = ["Command", "ParseLimits", "ParsedMessage", "parse_message"]
