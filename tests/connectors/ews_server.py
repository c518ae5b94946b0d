"""Replays recorded EWS responses (recordings/ews/*.xml) through `responses`, so the real
exchangelib speaks SOAP over HTTP to something that answers like Exchange 2019.

No Exchange server can run here. The recordings follow the shapes Exchange returns (documented
examples, ServerVersionInfo of Exchange 2019 CU); `$name` fields are filled per request. The
replayer picks the recording that answers each request, keeps every request for assertions,
and holds the little state a mailbox has: which items are in the watched folder, which
folders exist, and what has been sent.
"""

from __future__ import annotations

import base64
import re
import string
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import responses

RECORDINGS = Path(__file__).parent / "recordings" / "ews"
ENDPOINT = "https://mail.council.example/EWS/Exchange.asmx"
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
ITEM_A, ITEM_B, ITEM_C = "AAMkAGItemAAAA", "AAMkAGItemBBBB", "AAMkAGItemCCCC"
M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"


@dataclass
class Request:
    operation: str
    body: ET.Element

    def find(self, path: str) -> ET.Element | None:
        return self.body.find(path.replace("m:", M).replace("t:", T))

    def item_ids(self) -> list[str]:
        return [e.get("Id", "") for e in self.body.iter(f"{T}ItemId")]


@dataclass
class RecordedEws:
    """The mailbox the recordings describe: items A and B arrive in the first sync round (with
    changes to older items and a deletion, which are not arrivals), C (40 MB) in the second."""

    mime: dict[str, bytes] = field(default_factory=dict)     # item id -> MIME, of items in the Inbox
    folders: dict[str, str] = field(default_factory=dict)    # display name -> folder id
    requests: list[Request] = field(default_factory=list)
    moves: list[tuple[str, str]] = field(default_factory=list)   # (item id, folder name)
    sent: list[bytes] = field(default_factory=list)
    before_move: Callable[[str], None] | None = None         # called with the item id
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)  # operation -> (status, recording)
    ntlm: bool = False        # demand an NTLM handshake, checked against NTLM_USER_FILE
    _acceptor: object = None

    def install(self, mock: responses.RequestsMock, url: str = ENDPOINT) -> RecordedEws:
        mock.add_callback(responses.POST, url, callback=self._answer)
        return self

    def install_autodiscover(self, mock: responses.RequestsMock, domain: str, mailbox: str) -> None:
        """Autodiscover for `domain`: its website answers 404 (exchangelib's step 1), and
        autodiscover.<domain> (step 2) points at ENDPOINT."""
        mock.add(responses.POST, f"https://{domain}/autodiscover/autodiscover.svc", status=404,
                 body="<html><body>Page not found</body></html>", content_type="text/html")
        body = self._load("Autodiscover.GetUserSettings", mailbox=mailbox, ews_url=ENDPOINT)
        mock.add(responses.POST, f"https://autodiscover.{domain}/autodiscover/autodiscover.svc",
                 body=body, content_type="text/xml; charset=utf-8")

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests]

    # ------------------------------------------------------------------ dispatch

    def _answer(self, http_request) -> tuple[int, dict[str, str], str]:  # type: ignore[no-untyped-def]
        if self.ntlm and not self._ntlm_authenticated(http_request.headers.get("Authorization", "")):
            header = f"NTLM {self._challenge}" if self._challenge else "NTLM"
            return 401, {"WWW-Authenticate": header}, ""
        body = ET.fromstring(http_request.body)
        element = next(iter(body.find(f"{SOAP}Body")))  # type: ignore[arg-type]
        request = Request(element.tag.removeprefix(M), element)
        self.requests.append(request)
        if request.operation in self.fail:
            status, name = self.fail[request.operation]
            return status, {"Content-Type": "text/xml; charset=utf-8"}, self._load(name)
        handler = getattr(self, f"_{request.operation}")
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, handler(request)

    _challenge: str = ""

    def _ntlm_authenticated(self, authorization: str) -> bool:
        """IIS's three legs: no credentials -> 401 NTLM; NEGOTIATE -> 401 with a CHALLENGE;
        AUTHENTICATE -> the answer, or 401 again when pyspnego's acceptor refuses it. Each
        request is authenticated afresh (responses keeps no connection to bind a logon to)."""
        import spnego
        from spnego.exceptions import SpnegoError

        self._challenge = ""
        if not authorization.startswith("NTLM "):
            return False
        token = base64.b64decode(authorization[5:])
        if self._acceptor is None:
            self._acceptor = spnego.server(protocol="ntlm")
            self._challenge = base64.b64encode(self._acceptor.step(token) or b"").decode()
            return False
        acceptor, self._acceptor = self._acceptor, None
        try:
            acceptor.step(token)
        except SpnegoError:
            return False
        return bool(acceptor.complete)

    @staticmethod
    def _load(recording: str, **values: str) -> str:
        return string.Template((RECORDINGS / f"{recording}.xml").read_text()).substitute(values)

    def _ConvertId(self, _r: Request) -> str:           # exchangelib asks the server's version
        return self._load("ConvertId")

    def _GetFolder(self, r: Request) -> str:
        distinguished = r.find(".//t:DistinguishedFolderId")
        if distinguished is not None:
            return self._load(f"GetFolder.{distinguished.get('Id')}")
        folder_id = r.find(".//t:FolderId").get("Id", "")  # type: ignore[union-attr]
        name = next(k for k, v in self.folders.items() if v == folder_id)
        return self._load("GetFolder.by_id", folder_id=folder_id, name=name)

    def _FindFolder(self, r: Request) -> str:
        constant = r.find(".//t:Constant")
        name = constant.get("Value", "") if constant is not None else ""
        if name in self.folders:
            return self._load("FindFolder.found", name=name, folder_id=self.folders[name])
        return self._load("FindFolder.none")

    def _CreateFolder(self, r: Request) -> str:
        name = r.find(".//t:DisplayName")
        assert name is not None and name.text
        self.folders[name.text] = f"AAMkNEW{name.text}"
        return self._load("CreateFolder", folder_id=self.folders[name.text])

    def _SyncFolderItems(self, r: Request) -> str:
        state = r.find("m:SyncState")
        # The recorded states end S1, S2: the first round brings A and B, the second C.
        round_name = "initial" if state is None or not state.text else state.text[-2:]
        return self._load(f"SyncFolderItems.{round_name}")

    def _GetItem(self, r: Request) -> str:
        (item_id,) = r.item_ids()
        if item_id not in self.mime:
            return self._load("GetItem.not_found")
        changekey = r.find(".//t:ItemId").get("ChangeKey", "")  # type: ignore[union-attr]
        return self._load("GetItem", item_id=item_id, changekey=changekey,
                          mime=base64.b64encode(self.mime[item_id]).decode())

    def _MoveItem(self, r: Request) -> str:
        (item_id,) = r.item_ids()
        target = r.find("m:ToFolderId/t:FolderId")
        assert target is not None, "moves go to a folder found or created by id"
        names = {v: k for k, v in self.folders.items()}
        if item_id not in self.mime:
            return self._load("MoveItem.not_found")
        if self.before_move is not None:
            self.before_move(item_id)
        self.mime.pop(item_id, None)
        self.moves.append((item_id, names[target.get("Id", "")]))
        return self._load("MoveItem", new_id=f"{item_id}MOVED")

    def _CreateItem(self, r: Request) -> str:
        assert r.body.get("MessageDisposition") == "SendAndSaveCopy", r.body.attrib
        assert r.find("m:SavedItemFolderId/t:DistinguishedFolderId").get("Id") == "sentitems"  # type: ignore[union-attr]
        mime = r.find(".//t:MimeContent")
        assert mime is not None and mime.text
        self.sent.append(base64.b64decode(mime.text))
        return self._load("CreateItem")

    def _FindItem(self, r: Request) -> str:
        constant = r.find(".//t:Constant")
        wanted = constant.get("Value", "") if constant is not None else ""
        found = any(re.search(rb"^Message-ID:\s*" + re.escape(wanted.encode()), m, re.M | re.I)
                    for m in self.sent)
        return self._load("FindItem.found" if found else "FindItem.none")
