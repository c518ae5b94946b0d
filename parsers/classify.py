"""Loop protection: auto-replies, bounces (RFC 3464 DSN, Exchange NDR) and bulk mail."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from parsers.message import Mail
from parsers.model import ParsedMessage
from parsers.values import EMAIL_RE

_DAEMON = re.compile(
    r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounces?|microsoftexchange[0-9a-f]*)"
    r"(?:[+@.]|$)", re.I)
_LIST_REQUEST = re.compile(r"^[^@]*-(?:request|bounces?|owner)(?:\+[^@]*)?@", re.I)
_NOREPLY = re.compile(r"^(?:no-?reply|do-?not-?reply|donotreply|notifications?)(?:[+@.]|$)", re.I)
# Subjects that auto-responders write (Outlook/Exchange, Gmail, Apple Mail, Thunderbird, Domino,
# in the common European and other languages): an auto-reply even when every header that says so
# was stripped on the way. Anchored at the start, after gateway tags such as "[EXTERNAL]"; a
# person's "Re: Automatic reply: ..." is not matched.
_OOO_PHRASES = (
    # English
    r"automatic reply", r"auto(?:matic)?[- ]?reply", r"auto[- ]?response", r"autoreply",
    r"out of (?:the )?office", r"away from (?:the |my )?office",
    # German, Dutch, Scandinavian, Finnish
    r"abwesenheitsnotiz", r"automatische antwort", r"automatisch antwoord", r"afwezigheidsbericht",
    r"autosvar", r"automatisk svar", r"automatiskt svar", r"fraværsmelding", r"automaattinen vastaus",
    # French, Spanish, Portuguese, Italian, Romanian, Catalan
    r"r[ée]ponse automatique", r"absence du bureau", r"absent du bureau", r"message d'absence",
    r"respuesta autom[áa]tica", r"fuera de la oficina", r"ausente de la oficina",
    r"resposta autom[áa]tica", r"fora do escrit[óo]rio", r"ausente do escrit[óo]rio",
    r"risposta automatica", r"fuori ufficio", r"r[ăa]spuns automat",
    r"resposta autom[àa]tica",
    # Central and Eastern European, Greek, Turkish
    r"odpowied[źz] automatyczna", r"automatick[áa] odpov[ěe][ďd]", r"automatick[áa] odpove[ďd]",
    r"automatikus v[áa]lasz", r"automatski odgovor", r"samodejni odgovor",
    r"автоматический ответ", r"автоматична відповідь", r"автоматичен отговор",
    r"αυτόματη απάντηση", r"otomatik yan[ıi]t", r"otomatik cevap",
    # Asian
    r"自动回复", r"自動回覆", r"自動回復", r"自動応答", r"不在通知", r"자동 회신", r"자동 응답",
)
_OOO_SUBJECT = re.compile(
    r"^\s*(?:\[[^\[\]]{0,40}\]\s*){0,3}(?:" + "|".join(_OOO_PHRASES) + r")(?!\w)", re.I)
_NDR_SUBJECT = re.compile(
    r"^\s*(?:undeliverable|undelivered mail|delivery status notification \(failure\)"
    r"|mail delivery (?:failed|failure|subsystem)|returned mail|delivery has failed"
    r"|failure notice|non[- ]?delivery)", re.I)
_MSGID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")


@dataclass
class Verdict:
    kind: str | None = None  # auto_reply | bounce | unrelated | None (a person wrote it)
    automated: bool = False
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bounced_message_id: str | None = None
    bounced_recipients: list[str] = field(default_factory=list)


def classify_automated(m: Mail) -> Verdict:
    v = Verdict()
    sender = (m.from_addr or "").lower()
    ctype = m.msg.get_content_type()
    report_type = (m.msg.get_param("report-type") or "") if ctype == "multipart/report" else ""
    report_type = str(report_type).lower()
    ndr_flag = m.header("X-MS-Exchange-Message-Is-Ndr")  # present (often empty) on Exchange NDRs
    is_ndr = ndr_flag is not None and ndr_flag.strip().lower() not in ("false", "0")
    daemon = bool(_DAEMON.match(sender))

    if report_type == "delivery-status" or m.delivery_status or is_ndr or (
            daemon and _NDR_SUBJECT.match(m.subject)):
        v.kind, v.automated = "bounce", True
        _bounce_details(m, v)
        return v
    if report_type in ("disposition-notification",):
        v.kind, v.automated = "auto_reply", True
        v.reasons.append("read receipt")
        return v

    auto_sub = (m.header("Auto-Submitted") or "").strip().lower()
    precedence = (m.header("Precedence") or "").strip().lower()
    suppress = (m.header("X-Auto-Response-Suppress") or "").lower()
    rules_loop = m.header("X-MS-Exchange-Inbox-Rules-Loop") is not None
    listy = any(m.header(h) is not None for h in ("List-Id", "List-Unsubscribe", "List-Post"))
    empty_rp = m.return_path is not None and m.return_path in ("", "<>")

    if auto_sub and not auto_sub.startswith("no"):
        v.reasons.append(f"Auto-Submitted: {auto_sub}")
    if m.header("X-Autoreply") or m.header("X-Autorespond") or precedence == "auto_reply":
        v.reasons.append("auto-reply header")
    if _OOO_SUBJECT.match(m.subject):
        # The subject alone is enough: relays strip Auto-Submitted and X-Auto-Response-Suppress.
        v.reasons.append("automatic reply (subject)")
    if "all" in suppress.replace(" ", "").split(",") and rules_loop and not listy:
        v.reasons.append("X-Auto-Response-Suppress: All with X-MS-Exchange-Inbox-Rules-Loop")
    if empty_rp:
        v.reasons.append("empty return path")
    if daemon:
        v.reasons.append("mailer-daemon sender")
    if precedence in ("junk",) or (precedence == "bulk" and not listy):
        v.reasons.append(f"Precedence: {precedence}")
    if v.reasons:
        v.kind, v.automated = "auto_reply", True
        return v

    if listy or precedence in ("list", "bulk") or _LIST_REQUEST.match(sender):
        v.kind, v.automated = "unrelated", True
        v.reasons.append("mailing list or bulk mail")
        return v
    if _NOREPLY.match(sender):
        v.automated = True
        v.reasons.append("no-reply sender")
    if rules_loop and not v.automated:
        v.warnings.append("forwarded by an Exchange inbox rule (X-MS-Exchange-Inbox-Rules-Loop)")
    return v


@dataclass(frozen=True)
class OwnMail:
    """How mailflow knows mail it sent itself, given by the engine (the parser holds no config
    or secret): its partnerships' addresses, its Message-ID domain, and a check of the
    X-Mailflow-Signature it signs each Message-ID with."""

    addresses: Collection[str]
    message_id_domains: Collection[str]
    signature_valid: Callable[[str | None, str | None], bool] = lambda _msgid, _sig: False


def own_mail_reason(pm: ParsedMessage, own: OwnMail) -> str | None:
    """Why `pm` is mailflow's own mail come back (a loop through a relay, a forwarding rule, a
    copy to itself), or None. Holds when Auto-Submitted and X-Auto-Response-Suppress were
    stripped: any one of its From or envelope address, its Message-ID's domain, or a valid
    signature is enough."""
    addresses = {_unplussed(a) for a in own.addresses}
    for what, addr in (("From", pm.from_addr), ("envelope sender", pm.return_path)):
        if addr and _unplussed(addr) in addresses:
            return f"mailflow's own mail ({what} is the partnership address)"
    domain = _msgid_domain(pm.message_id)
    if domain and domain in {d.lower() for d in own.message_id_domains}:
        return "mailflow's own mail (its Message-ID domain)"
    if pm.mailflow_signature and own.signature_valid(pm.message_id, pm.mailflow_signature):
        return "mailflow's own mail (signed X-Mailflow-Signature)"
    return None


def _unplussed(address: str) -> str:
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


def _msgid_domain(message_id: str | None) -> str | None:
    found = _MSGID.fullmatch((message_id or "").strip())
    return found.group(0)[1:-1].rpartition("@")[2].lower() if found else None


def _bounce_details(m: Mail, v: Verdict) -> None:
    recipients: list[str] = []
    for block in m.delivery_status:
        for rec in re.split(r"\n\s*\n", block):
            final = re.search(r"^(?:Final|Original)-Recipient:\s*(?:rfc822;)?\s*(\S+)", rec,
                              re.I | re.M)
            action = re.search(r"^Action:\s*(\w+)", rec, re.I | re.M)
            if final and (action is None or action.group(1).lower() == "failed"):
                addr = final.group(1).strip("<>").lower()
                if addr not in recipients:
                    recipients.append(addr)
            elif final and action and action.group(1).lower() == "delayed":
                v.warnings.append("delivery delayed, not failed")
    if not recipients:
        recipients = _recipients_from_text(m.body_text, m)
    v.bounced_recipients = recipients
    # The original message: attached message/rfc822, else text/rfc822-headers, else the body.
    for fwd in m.forwards:
        if fwd.message_id:
            v.bounced_message_id = fwd.message_id
            return
    for hdrs in m.rfc822_headers:
        found = re.search(r"^Message-ID:\s*(<[^>\s]+>)", hdrs, re.I | re.M)
        if found:
            v.bounced_message_id = found.group(1)
            return
    body = m.body_text
    found = re.search(r"Message-ID:\s*(<[^>\s]+>)", body, re.I)
    if found:
        v.bounced_message_id = found.group(1)
        return
    v.warnings.append("bounce without the original Message-ID")


_FAILED_TO = re.compile(
    r"(?:Delivery has failed to these recipients or groups:|could not be delivered to"
    r"|couldn't be delivered to|following address(?:es)? failed|Your message to)"
    r"\s*((?:\s*<?[^\s<>@]+@[^\s<>]+>?[:,]?)+)", re.I)


def _recipients_from_text(text: str, m: Mail) -> list[str]:
    """Failed recipients named in an NDR's human-readable text (no DSN part)."""
    out: list[str] = []
    for found in _FAILED_TO.finditer(text):
        for a in EMAIL_RE.findall(found.group(1)):
            a = a.lower()
            if a not in out and a != (m.from_addr or "") and a not in m.to:
                out.append(a)
    return out
