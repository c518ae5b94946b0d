"""The directory of agencies: names, mail domains and contacts per tier, kept by the business team.

A TOML file (see mailflow/examples/directory.example.toml). Agencies named on a form are matched
by name or alias, and people by their mail domain; contacts are looked up by role key, the
policy's tier (`manager`, `senior_manager`, ...) or a named role (`director_of_social_work`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailflow.errors import ConfigError

_WORDS = re.compile(r"[a-z0-9]+")
_CONTACT = re.compile(r"^(.*)<([^<>]+)>$")  # "Name, Title <address>"
_ADDRESS = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+$")
_STOP = {"the", "and", "of", "nhs", "trust", "council", "service", "services", "ltd", "limited"}


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


@dataclass
class Directory:
    agencies: list[Agency] = field(default_factory=list)
    roles: dict[str, tuple[Contact, ...]] = field(default_factory=dict)  # partnership-wide: chair, ...
    business_team: tuple[str, ...] = ()
    source: Path | None = None

    @classmethod
    def load(cls, path: Path | None, business_team: Sequence[str] = ()) -> Directory:
        if path is None:
            return cls(business_team=tuple(business_team))
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the directory ({exc})") from None
        return parse_directory(data, path, business_team)

    def match_agency(self, name: str | None = None, email: str | None = None) -> Agency | None:
        """By sender domain first (exact or a sub-domain), then by name or alias."""
        if email and "@" in email:
            domain = email.rsplit("@", 1)[1].lower()
            for agency in self.agencies:
                if any(domain == d or domain.endswith("." + d) for d in agency.domains):
                    return agency
        if name:
            wanted = _key(name)
            best: tuple[float, Agency] | None = None
            for agency in self.agencies:
                for candidate in (agency.name, *agency.aliases):
                    score = _similarity(wanted, _key(candidate))
                    if score >= 0.6 and (best is None or score > best[0]):
                        best = (score, agency)
            if best:
                return best[1]
        return None

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
        for agency in self.agencies:
            if not agency.domains:
                out.append(f"agency {agency.name!r}: no mail domains (senders cannot be matched to it)")
            for d in agency.domains:
                if d in seen:
                    out.append(f"domain {d!r} is listed for both {seen[d]!r} and {agency.name!r}")
                seen[d] = agency.name
            for tier in ("manager", "senior_manager", "executive"):
                if not agency.contacts_for(tier):
                    out.append(f"agency {agency.name!r}: no {tier} contact (escalations at that tier "
                               "will go to the business team to route)")
        return out


def parse_directory(data: dict[str, Any], path: Path, business_team: Sequence[str] = ()) -> Directory:
    unknown = set(data) - {"partnership", "roles", "agency"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (allowed: agency, partnership, roles)")
    team = list(business_team) + list(data.get("partnership", {}).get("business_team", []))
    roles = {role: _contacts(v, path, f"roles.{role}") for role, v in data.get("roles", {}).items()}
    agencies = []
    for i, raw in enumerate(data.get("agency", [])):
        where = f"agency #{i + 1}"
        if "name" not in raw:
            raise ConfigError(f"{path}: {where}: missing 'name'")
        bad = set(raw) - {"name", "kind", "domains", "aliases", "contacts"}
        if bad:
            raise ConfigError(f"{path}: {where}: unknown key {sorted(bad)[0]!r}")
        contacts = {role: _contacts(v, path, f"{where}.contacts.{role}")
                    for role, v in raw.get("contacts", {}).items()}
        agencies.append(Agency(
            name=raw["name"], kind=raw.get("kind", "other"),
            domains=tuple(d.lower() for d in raw.get("domains", [])),
            aliases=tuple(raw.get("aliases", [])), contacts=contacts,
        ))
    return Directory(agencies=agencies, roles=roles, business_team=tuple(dict.fromkeys(team)), source=path)


def _contacts(value: Any, path: Path, where: str) -> tuple[Contact, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {where}: expected a list of \"Name <address>\" strings")
    out = []
    for entry in value:
        m = _CONTACT.match(entry.strip())
        name, addr = (m.group(1).strip().strip('"'), m.group(2).strip()) if m else ("", entry.strip())
        if not _ADDRESS.match(addr):
            raise ConfigError(f"{path}: {where}: {addr!r} is not an email address")
        out.append(Contact(name=name, email=addr))
    return tuple(out)


def _key(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if w not in _STOP}


def _similarity(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b)) if (a <= b or b <= a) else len(a & b) / len(a | b)
