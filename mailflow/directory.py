"""The directory of agencies: names, mail domains and contacts per tier, kept by the business team.

A TOML file (see mailflow/examples/directory.example.toml). Contacts are looked up by role key:
the policy's tier (`manager`, `senior_manager`, ...) or a named role (`director_of_social_work`).

Matching an agency named on a form (`match_agency`) takes strong evidence only, in this order:

1. the person's exact address is one of an agency's contacts;
2. the person's mail domain is one of an agency's domains (exactly, or a sub-domain of it; the
   most specific domain wins);
3. the agency's name or an alias, equal after normalising: case, accents, punctuation and
   apostrophes, "&" = "and", "the" and legal forms (Ltd, Limited, PLC, LLP, CIC) ignored.

A name or alias made only of generic words ("Adult Social Care", "Police", "NHS Trust") is never
evidence. Shared domains (nhs.net, cjsm.net, webmail providers, and any the directory adds in
`[partnership] shared_domains`) are neither evidence nor a veto: only an exact contact address on
them counts. An address at one agency's domain while the form names another agency is a conflict,
and a name match is vetoed by an address at a domain that is not the named agency's own (when it
lists domains). A conflict, a tie or no evidence is no match: the result then lists the
candidates and why each was not chosen, for the business team to settle by hand.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, PlainValidator
from pydantic_core import PydanticCustomError

from mailflow.addresses import address_of, unique_addresses
from mailflow.errors import ConfigError
from mailflow.validation import Array, Table, describe, validate

_WORDS = re.compile(r"[a-z0-9]+")
_CONTACT = re.compile(r"^(.*)<([^<>]+)>$")  # "Name, Title <address>"
_ADDRESS = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+$")
_IGNORED = {"the", "ltd", "limited", "plc", "llp", "cic"}

# Words that say what kind of body an agency is, not which one: never evidence on their own.
GENERIC_WORDS = frozenset("""
    a an and of for in on at to
    adult adults social care carers council borough county city district metropolitan unitary local
    authority nhs trust foundation ft nhsft health healthcare hospital hospitals university teaching
    general police constabulary force service services team department dept directorate division unit
    safeguarding mental community integrated partnership board commissioning group icb ccg provider
    providers home homes housing ambulance fire rescue probation primary practice surgery gp
    """.split())

# Mail domains many unrelated bodies or people share.
SHARED_DOMAINS = frozenset({
    "nhs.net", "cjsm.net", "gcsx.gov.uk", "gmail.com", "googlemail.com", "outlook.com", "hotmail.com",
    "hotmail.co.uk", "live.com", "live.co.uk", "msn.com", "yahoo.com", "yahoo.co.uk", "icloud.com",
    "me.com", "aol.com", "btinternet.com", "sky.com", "virginmedia.com", "protonmail.com", "proton.me",
})


@dataclass(frozen=True)
class Contact:
    name: str
    email: str


@dataclass(frozen=True)
class Agency:
    name: str
    kind: str
    domains: tuple[str, ...]
    aliases: tuple[str, ...]
    contacts: dict[str, tuple[Contact, ...]]

    def contacts_for(self, role: str) -> tuple[Contact, ...]:
        return self.contacts.get(role, ())

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Candidate:
    """An agency the evidence pointed at without settling on it."""

    agency: Agency
    why_not: str


@dataclass(frozen=True)
class AgencyMatch:
    """The agency a (name, address) pair names, or None with the candidates and why."""

    agency: Agency | None
    evidence: str
    candidates: tuple[Candidate, ...] = ()


@dataclass
class Directory:
    agencies: list[Agency] = field(default_factory=list)
    roles: dict[str, tuple[Contact, ...]] = field(default_factory=dict)  # partnership-wide: chair, ...
    business_team: tuple[str, ...] = ()
    source: Path | None = None
    shared_domains: frozenset[str] = SHARED_DOMAINS

    @classmethod
    def load(cls, path: Path | None, business_team: Sequence[str] = ()) -> Directory:
        if path is None:
            return cls(business_team=tuple(unique_addresses(business_team)))
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the directory ({exc})") from None
        return parse_directory(data, path, business_team)

    def match_agency(self, name: str | None = None, email: str | None = None) -> AgencyMatch:
        """The agency a form names for a person, on strong evidence only (see the module doc)."""
        address = address_of(email or "").lower()
        domain = address.rpartition("@")[2]
        named = normalise_name(name or "")
        by_address, address_evidence, tied = self._by_address(address, domain)
        if tied:
            return AgencyMatch(None, f"the address {address} fits more than one agency", tuple(
                Candidate(a, f"{address} fits its domains, and another agency's too") for a in tied))
        by_name = self._by_name.get(named, []) if named else []
        if by_address is not None:
            rivals = [a for a in by_name if a is not by_address]
            if rivals and by_address not in by_name:
                return AgencyMatch(None, f"the form names {name!r} but the person's address is {by_address.name}'s",
                                   (Candidate(by_address, f"{address_evidence}, but the form names another agency"),
                                    *(Candidate(a, f"the form names it, but {address} is not at its domains")
                                      for a in rivals)))
            return AgencyMatch(by_address, address_evidence)
        if len(by_name) > 1:
            return AgencyMatch(None, f"{name!r} names more than one agency", tuple(
                Candidate(a, "another agency has the same name or alias") for a in by_name))
        if len(by_name) == 1:
            agency = by_name[0]
            if domain and domain not in self.shared_domains and agency.domains:
                return AgencyMatch(None, f"the form names {agency.name!r} but the person's address is not at "
                                   "its domains", (Candidate(agency, f"named on the form, but {address} is not "
                                                   f"at its domains ({', '.join(agency.domains)})"),))
            return AgencyMatch(agency, f"the form names it exactly ({name!r})")
        why = ([f"{name!r} is made only of generic words" if not is_distinctive(named) else
                f"no agency is named {name!r}"] if named else []) + (
            [f"{address} is at a shared domain"] if domain in self.shared_domains else
            [f"no agency has the domain {domain}"] if domain else [])
        return AgencyMatch(None, "; ".join(why) or "no agency named", self._near(name or ""))

    @functools.cached_property
    def _by_name(self) -> dict[str, list[Agency]]:
        """Agencies by each distinctive name and alias, normalised."""
        index: dict[str, list[Agency]] = {}
        for agency in self.agencies:
            for key in dict.fromkeys(normalise_name(n) for n in agency.names() if is_distinctive(n)):
                index.setdefault(key, []).append(agency)
        return index

    @functools.cached_property
    def _by_contact(self) -> dict[str, list[Agency]]:
        """Agencies by each contact's address (lower case)."""
        index: dict[str, list[Agency]] = {}
        for agency in self.agencies:
            for email in dict.fromkeys(c.email.lower() for people in agency.contacts.values() for c in people):
                index.setdefault(email, []).append(agency)
        return index

    def _by_address(self, address: str, domain: str) -> tuple[Agency | None, str, list[Agency]]:
        """The agency an address belongs to: as a listed contact, else by its domain."""
        if not address:
            return None, "", []
        holders = self._by_contact.get(address, [])
        if len(holders) == 1:
            return holders[0], f"{address} is one of its contacts", []
        if domain in self.shared_domains:
            return None, "", []
        best: dict[int, list[Agency]] = {}
        for agency in self.agencies:
            for d in agency.domains:
                if d not in self.shared_domains and (domain == d or domain.endswith("." + d)):
                    best.setdefault(len(d), []).append(agency)
        if not best:
            return None, "", []
        found = list({a.name: a for a in best[max(best)]}.values())
        if len(found) > 1:
            return None, "", found
        return found[0], f"{address} is at its domain", []

    def _near(self, name: str) -> tuple[Candidate, ...]:
        """Agencies the name resembles, for a person to choose from; none of it is evidence."""
        words = set(normalise_name(name).split())
        if not words:
            return ()
        scored = []
        for agency in self.agencies:
            best: tuple[int, int, str] | None = None
            for n in agency.names():
                theirs = set(normalise_name(n).split())
                distinct, generic = (words & theirs) - GENERIC_WORDS, (words & theirs) & GENERIC_WORDS
                if not is_distinctive(n) and theirs == words:
                    why = f"its alias {n!r} is made only of generic words, which never identify an agency"
                    generic = words | {"~"}   # rank it first: the form used exactly this alias
                elif distinct:
                    why = f"shares {', '.join(repr(w) for w in sorted(distinct))} but the names differ"
                elif len(generic) >= 2:
                    why = f"only generic words in common ({', '.join(sorted(generic))})"
                else:
                    continue
                score = (len(distinct), len(generic), why)
                best = score if best is None or score[:2] > best[:2] else best
            if best is not None:
                scored.append((best, agency))
        scored.sort(key=lambda x: x[0][:2], reverse=True)
        return tuple(Candidate(a, s[2]) for s, a in scored[:5])

    def contacts(self, role: str, agencies: Iterable[Agency]) -> list[Contact]:
        found = [c for a in agencies for c in a.contacts_for(role)]
        return found + list(self.roles.get(role, ()))

    def is_contact(self, email: str) -> list[tuple[Agency | None, str]]:
        """Every (agency, role) an address holds."""
        email = email.lower()
        hits: list[tuple[Agency | None, str]] = []
        for agency in self.agencies:
            for role, people in agency.contacts.items():
                if any(p.email.lower() == email for p in people):
                    hits.append((agency, role))
        for role, people in self.roles.items():
            if any(p.email.lower() == email for p in people):
                hits.append((None, role))
        return hits

    def problems(self) -> list[str]:
        """What `mailflow directory check` reports."""
        out = []
        if not self.business_team:
            out.append("no business team address")
        if "chair" not in self.roles:
            out.append("no partnership chair in [roles] (final-stage alerts go to the business team only)")
        seen: dict[str, str] = {}
        names: dict[str, str] = {}
        for agency in self.agencies:
            if not agency.domains:
                out.append(f"agency {agency.name!r}: no mail domains (senders cannot be matched to it)")
            for d in agency.domains:
                if d in self.shared_domains:
                    out.append(f"agency {agency.name!r}: domain {d!r} is shared by many bodies and is not used "
                               "to match (its contacts' exact addresses are)")
                if d in seen and seen[d] != agency.name:
                    out.append(f"domain {d!r} is listed for both {seen[d]!r} and {agency.name!r}")
                seen[d] = agency.name
            for n in agency.names():
                key = normalise_name(n)
                if not is_distinctive(n):
                    out.append(f"agency {agency.name!r}: {n!r} is made only of generic words, so it never "
                               "matches a form on its own (such forms go to the business team to route)")
                elif key in names and names[key] != agency.name:
                    out.append(f"{n!r} names both {names[key]!r} and {agency.name!r}: forms naming it will "
                               "be routed by hand")
                names.setdefault(key, agency.name)
            for tier in ("manager", "senior_manager", "executive"):
                if not agency.contacts_for(tier):
                    out.append(f"agency {agency.name!r}: no {tier} contact (escalations at that tier "
                               "will go to the business team to route)")
        return out


@functools.lru_cache(maxsize=4096)
def normalise_name(text: str) -> str:
    """An agency name as compared: lower case, no accents or punctuation, "&" as "and", without
    "the" and legal forms (Ltd, Limited, PLC, LLP, CIC)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"['\u2019`]", "", text.replace("&", " and "))
    return " ".join(w for w in _WORDS.findall(text) if w not in _IGNORED)


def is_distinctive(name: str) -> bool:
    """Whether a name has a word that says which body it is, not just what kind."""
    return any(w not in GENERIC_WORDS for w in normalise_name(name).split())


# --- the file ---------------------------------------------------------------------------------
# Its schema as pydantic models (mailflow/validation.py): every key known, every contact an
# address, checked as the file is read; errors name the file, the table and the key.


def _contact(value: Any) -> Contact:
    if not isinstance(value, str):
        raise PydanticCustomError("value_error", "{error}",
                                  {"error": f'expected a "Name <address>" string, got {describe(value)}'})
    m = _CONTACT.match(value.strip())
    name, addr = (m.group(1).strip().strip('"'), m.group(2).strip()) if m else ("", value.strip())
    if not _ADDRESS.match(addr):
        raise PydanticCustomError("value_error", "{error}", {"error": f"{addr!r} is not an email address"})
    return Contact(name=name, email=addr)


def _team_address(value: str) -> str:
    if not address_of(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


ContactEntry = Annotated[Contact, PlainValidator(_contact)]
Contacts = dict[str, Array[ContactEntry]]   # role key -> "Name, Title <address>" entries


class DirectoryPartnership(Table):
    """[partnership]"""

    business_team: Array[Annotated[str, AfterValidator(_team_address)]] = ()  # with the config's
    shared_domains: Array[str] = ()   # domains many bodies share: no evidence (the usual ones are built in)


class AgencyTable(Table):
    """[[agency]]"""

    name: str
    kind: str = "other"               # e.g. "local_authority_adult_services" (a policy's only_for)
    domains: Array[str] = ()
    aliases: Array[str] = ()
    contacts: Contacts = {}           # [agency.contacts]: by tier or named role


class DirectoryFile(Table):
    partnership: DirectoryPartnership = DirectoryPartnership()
    roles: Contacts = {}              # partnership-wide: chair, ...
    agency: Array[AgencyTable] = ()


def parse_directory(data: dict[str, Any], path: Path, business_team: Sequence[str] = ()) -> Directory:
    doc = validate(DirectoryFile, data, str(path))
    team = [*business_team, *doc.partnership.business_team]
    agencies = [Agency(name=a.name, kind=a.kind, domains=tuple(d.lower().strip(".") for d in a.domains),
                       aliases=a.aliases, contacts=dict(a.contacts))
                for a in doc.agency]
    return Directory(agencies=agencies, roles=dict(doc.roles), business_team=tuple(unique_addresses(team)),
                     source=path, shared_domains=SHARED_DOMAINS | {d.lower() for d in doc.partnership.shared_domains})
