"""A minimal Outlook .msg writer for tests: no library here writes one (olefile, cfb and
extract-msg only read). Two layers, each after its spec:

- `compound_file()`: an OLE2 compound file (MS-CFB, version 3, 512-byte sectors), streams under
  4096 bytes in the mini stream, every storage's children in a balanced tree;
- `outlook_msg()`: the storages and property streams of a received message with attachments
  (MS-OXMSG), as Outlook saves one when it is dragged into a new mail.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import UTC, datetime

Tree = Mapping[str, "bytes | Tree"]       # a stream's bytes, or a storage's children

SECTOR, MINI_SECTOR, MINI_CUTOFF = 512, 64, 4096
FREE, END, FAT_SECT, NO_STREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
STORAGE, STREAM, ROOT = 1, 2, 5


class _Entry:
    def __init__(self, name: str, kind: int, data: bytes = b"") -> None:
        self.name, self.kind, self.data = name, kind, data
        self.left = self.right = self.child = NO_STREAM
        self.start, self.size = END, 0


def _sort_key(name: str) -> tuple[int, str]:
    return len(name), name.upper()      # MS-CFB 2.6.4: shorter names first, then case-blind


def compound_file(tree: Tree) -> bytes:
    entries = [_Entry("Root Entry", ROOT)]

    def add(children: Tree) -> int:
        """Children as entries; returns the id of the root of their balanced tree."""
        ids = []
        for name in sorted(children, key=_sort_key):
            value = children[name]
            entry = _Entry(name, STREAM, value) if isinstance(value, bytes) else _Entry(name, STORAGE)
            entries.append(entry)
            ids.append((len(entries) - 1, value))
        for index, value in ids:
            if not isinstance(value, bytes):
                entries[index].child = add(value)

        def balance(lo: int, hi: int) -> int:
            if lo >= hi:
                return NO_STREAM
            mid = (lo + hi) // 2
            node = entries[ids[mid][0]]
            node.left, node.right = balance(lo, mid), balance(mid + 1, hi)
            return ids[mid][0]

        return balance(0, len(ids))

    entries[0].child = add(tree)

    # Small streams go into the mini stream, in 64-byte mini sectors.
    mini, mini_fat = bytearray(), []
    big = [e for e in entries if e.kind == STREAM and len(e.data) >= MINI_CUTOFF]
    for e in entries:
        if e.kind == STREAM and 0 < len(e.data) < MINI_CUTOFF:
            count = -(-len(e.data) // MINI_SECTOR)
            e.start, e.size = len(mini_fat), len(e.data)
            mini_fat += [len(mini_fat) + i + 1 for i in range(count - 1)] + [END]
            mini += e.data.ljust(count * MINI_SECTOR, b"\0")
        elif e.kind == STREAM:
            e.size = len(e.data)

    def sectors(data: bytes) -> list[bytes]:
        return [data[i:i + SECTOR].ljust(SECTOR, b"\0") for i in range(0, len(data), SECTOR)]

    # Regular sectors: directory, mini FAT, mini stream, big streams, then the FAT itself.
    chains: list[list[bytes]] = []
    dir_entries = len(entries) + (-len(entries) % 4)
    dir_start = 0
    dir_count = dir_entries // 4
    mini_fat_bytes = b"".join(struct.pack("<I", x) for x in mini_fat)
    mini_fat_sectors = sectors(mini_fat_bytes + b"\xff" * (-len(mini_fat_bytes) % SECTOR))
    next_sector = dir_count
    mini_fat_start = next_sector if mini_fat_sectors else END
    next_sector += len(mini_fat_sectors)
    chains.append(mini_fat_sectors)
    mini_sectors = sectors(bytes(mini))
    entries[0].start = next_sector if mini_sectors else END
    entries[0].size = len(mini)
    next_sector += len(mini_sectors)
    chains.append(mini_sectors)
    for e in big:
        e.start = next_sector
        chain = sectors(e.data)
        next_sector += len(chain)
        chains.append(chain)

    content = next_sector
    fat_count = 1
    while content + fat_count > fat_count * (SECTOR // 4):
        fat_count += 1
    fat = [END] * dir_count
    fat[:dir_count - 1] = range(1, dir_count)
    for chain in chains:
        first = len(fat)
        fat += [first + i + 1 for i in range(len(chain) - 1)] + ([END] if chain else [])
    fat += [FAT_SECT] * fat_count
    fat += [FREE] * (fat_count * (SECTOR // 4) - len(fat))

    directory = b"".join(_directory_entry(e) for e in entries)
    directory += _empty_entry() * (dir_entries - len(entries))
    difat = list(range(content, content + fat_count)) + [FREE] * (109 - fat_count)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I", bytes.fromhex("D0CF11E0A1B11AE1"), b"\0" * 16,
        0x003E, 3, 0xFFFE, 9, 6, b"\0" * 6, 0, fat_count, dir_start, 0, MINI_CUTOFF,
        mini_fat_start, len(mini_fat_sectors), END, 0, *difat)
    body = sectors(directory) + [s for chain in chains for s in chain]
    fat_bytes = b"".join(struct.pack("<I", x) for x in fat)
    return header + b"".join(body) + fat_bytes


def _directory_entry(e: _Entry) -> bytes:
    name = e.name.encode("utf-16-le") + b"\0\0"
    return struct.pack("<64sHBBIII16sIQQIQ", name, len(name), e.kind, 1, e.left, e.right, e.child,
                       b"\0" * 16, 0, 0, 0, e.start if e.size or e.kind == ROOT else END, e.size)


def _empty_entry() -> bytes:
    return struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NO_STREAM, NO_STREAM, NO_STREAM,
                       b"\0" * 16, 0, 0, 0, 0, 0)


# --------------------------------------------------------------------------- MS-OXMSG

PT_LONG, PT_SYSTIME, PT_UNICODE, PT_BINARY = 0x0003, 0x0040, 0x001F, 0x0102


def _properties(props: Mapping[int, tuple[int, object]], header: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The __properties_version1.0 stream, and the __substg1.0_ streams of variable-size values."""
    stream, substreams = bytearray(header), {}
    for prop_id, (ptype, value) in sorted(props.items()):
        tag = (prop_id << 16) | ptype
        if ptype in (PT_UNICODE, PT_BINARY):
            # A string's stream has no terminator; its size counts one (MS-OXMSG 2.4.2.2).
            data = str(value).encode("utf-16-le") if ptype == PT_UNICODE else bytes(value)  # type: ignore[call-overload]
            substreams[f"__substg1.0_{tag:08X}"] = data
            stream += struct.pack("<IIII", tag, 0x6, len(data) + (2 if ptype == PT_UNICODE else 0), 0)
        elif ptype == PT_SYSTIME:
            assert isinstance(value, datetime)
            ticks = int((value - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)
            stream += struct.pack("<IIQ", tag, 0x6, ticks)
        else:
            stream += struct.pack("<IIi4x", tag, 0x6, int(value))  # type: ignore[call-overload]
    return bytes(stream), substreams


def outlook_msg(*, sender_name: str, sender_email: str, to: str, subject: str, body: str,
                sent: datetime, attachments: Mapping[str, bytes] = {}) -> bytes:
    """A received message saved by Outlook: transport headers, sender, body, attachments."""
    headers = (f"From: {sender_name} <{sender_email}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
               f"Date: {sent:%a, %d %b %Y %H:%M:%S +0000}\r\nMIME-Version: 1.0\r\n\r\n")
    props, streams = _properties({
        0x001A: (PT_UNICODE, "IPM.Note"),
        0x0037: (PT_UNICODE, subject),
        0x0039: (PT_SYSTIME, sent),                    # PR_CLIENT_SUBMIT_TIME
        0x007D: (PT_UNICODE, headers),                 # PR_TRANSPORT_MESSAGE_HEADERS
        0x0C1A: (PT_UNICODE, sender_name),
        0x0C1F: (PT_UNICODE, sender_email),
        0x0E04: (PT_UNICODE, to),                      # PR_DISPLAY_TO
        0x0E06: (PT_SYSTIME, sent),                    # PR_MESSAGE_DELIVERY_TIME
        0x1000: (PT_UNICODE, body),
    }, header=struct.pack("<8xIIII8x", 0, len(attachments), 0, len(attachments)))
    tree: dict[str, bytes | Tree] = {"__properties_version1.0": props, **streams}
    tree["__nameid_version1.0"] = {f"__substg1.0_000{n}0102": b"" for n in (2, 3, 4)}
    for i, (name, data) in enumerate(attachments.items()):
        a_props, a_streams = _properties({
            0x3701: (PT_BINARY, data),                 # PR_ATTACH_DATA_BIN
            0x3704: (PT_UNICODE, name[:12]),
            0x3705: (PT_LONG, 1),                      # ATTACH_BY_VALUE
            0x3707: (PT_UNICODE, name),                # PR_ATTACH_LONG_FILENAME
            0x0E21: (PT_LONG, i),                      # PR_ATTACH_NUM
        }, header=b"\0" * 8)
        tree[f"__attach_version1.0_#{i:08X}"] = {"__properties_version1.0": a_props, **a_streams}
    return compound_file(tree)
