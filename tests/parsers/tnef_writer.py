"""A minimal TNEF (winmail.dat) writer for tests (MS-OXTNEF): no library here writes TNEF.

Only what Outlook puts in a "Rich Text" message that matters to the parser: the TNEF version and
an attMAPIProps block holding PR_RTF_COMPRESSED (the body, compressed as Outlook compresses it).
"""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LVL_MESSAGE = 0x01
ATT_TNEF_VERSION = 0x00089006      # atpDword << 16 | attTnefVersion
ATT_MAPI_PROPS = 0x00069003        # atpByte  << 16 | attMAPIProps
PT_BINARY = 0x0102
PR_RTF_COMPRESSED = 0x1009


def _attribute(level: int, attr_id: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", checksum)


def _binary_property(prop_id: int, value: bytes) -> bytes:
    padding = b"\x00" * (-len(value) % 4)
    return struct.pack("<HHII", PT_BINARY, prop_id, 1, len(value)) + value + padding


def rich_text_tnef(rtf: bytes) -> bytes:
    """winmail.dat whose only body is `rtf`, compressed (MS-OXRTFCP)."""
    from compressed_rtf import compress

    props = struct.pack("<I", 1) + _binary_property(PR_RTF_COMPRESSED, compress(rtf, compressed=True))
    return (struct.pack("<IH", SIGNATURE, 0x0001)
            + _attribute(LVL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000))
            + _attribute(LVL_MESSAGE, ATT_MAPI_PROPS, props))
