"""`cds-service capture deidentify DIR`: captured cases made shareable as fixtures.

What changes, consistently across every case of one run (the same patient gets the same
pseudonyms and the same date shift in each of its captures):

- dates: every date, dateTime and instant (and the capture time) moves back by a per-patient
  number of days (400-1499), so intervals, ages and "how long ago" stay as they were;
- identifiers: resource ids, references, `identifier` values, context ids, selections and
  card actions' resourceId become pseudonyms (UUIDs keyed by a secret of the run);
- names: HumanName parts, person references' display and annotation authors become
  pseudonyms; telecom, address, photo, contact and narrative (`text.div`) are removed;
- free text: any original name, identifier (5 characters or more) or date left in another
  string is replaced too.

Clinical values (codes, quantities, doses, statuses, texts of codes) are kept, so the same
cards result. The secret is random per run and never written: pseudonyms cannot be reversed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.fhir.scenarios import scenario_dirs
from cds_service.fhir.timeshift import EMBEDDED_DATE, Shift, shift_dates

PERSON_TYPES = frozenset({"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person"})
DROPPED = frozenset({"telecom", "address", "photo", "contact"})
# Strings under these members are codes or vocabulary: never free text to sweep.
CODED = frozenset({"system", "code", "unit", "version", "status", "resourceType", "use"})
ID_CONTEXT = ("patientId", "encounterId")
REF_CONTEXT = ("userId",)
MIN_FREE_TEXT_ID = 5
SHIFT_DAYS = (400, 1500)
_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
FILES = ("request.json", "patient.json", "expected.json", "capture.json")


@dataclass
class Pseudonyms:
    """Keyed, one-way replacements; the same original always gets the same pseudonym."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    ids: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def _mac(self, kind: str, value: str) -> bytes:
        return hmac.new(self.key, f"{kind}\0{value}".encode(), hashlib.sha256).digest()

    def ident(self, value: str) -> str:
        self.ids.add(value)
        return str(uuid.UUID(bytes=self._mac("id", value)[:16]))

    def name(self, value: str) -> str:
        self.names.add(value)
        return "Anon" + self._mac("name", value.lower()).hex()[:8]

    def shift(self, patient_id: str, avoid: set[date] | None = None) -> Shift:
        """Back by 400-1499 days (keyed per patient), never onto one of its own dates."""
        low, high = SHIFT_DAYS
        days = low + int.from_bytes(self._mac("days", patient_id)[:4], "big") % (high - low)
        dates = avoid or set()
        while any(d - timedelta(days=days) in dates for d in dates):
            days += 1
        return Shift.by_days(-days)

    def reference(self, value: str) -> str:
        """'Type/id', 'base/Type/id/_history/n', 'urn:uuid:x' with the id pseudonymised."""
        if value.startswith("urn:uuid:"):
            return "urn:uuid:" + self.ident(value.removeprefix("urn:uuid:"))
        if value.startswith(("#", "urn:oid:")):
            return value
        parts = value.split("/")
        for i in range(len(parts) - 1):
            nxt = parts[i + 1]
            if _TYPE.match(parts[i]) and nxt and not nxt.startswith("_") and "?" not in nxt:
                parts[i + 1] = self.ident(nxt)
        return "/".join(parts)


class _Walker:
    """The structural pass: ids, references, identifiers, names, dropped members."""

    def __init__(self, names: Pseudonyms) -> None:
        self.p = names

    def value(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return self.obj(value)
        if isinstance(value, list):
            return [self.value(item, key) for item in value]
        if isinstance(value, str):
            if key in ("reference", "fullUrl", "resourceId"):
                return self.p.reference(value)
            if key == "authorString":
                return self.p.name(value)
        return value

    def obj(self, value: dict[str, Any]) -> dict[str, Any]:
        person = value.get("resourceType") in PERSON_TYPES
        ref = value.get("reference")
        person_ref = isinstance(ref, str) and bool(PERSON_TYPES.intersection(ref.split("/")))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in DROPPED or (key == "text" and isinstance(item, dict) and "div" in item):
                continue
            if key == "id" and "resourceType" in value and isinstance(item, str):
                out[key] = self.p.ident(item)
            elif key == "identifier":
                out[key] = self.identifiers(item)
            elif key == "name" and person and isinstance(item, list):
                out[key] = [self.human_name(n) for n in item if isinstance(n, dict)]
            elif key == "display" and person_ref and isinstance(item, str):
                out[key] = self.p.name(item)
            else:
                out[key] = self.value(item, key)
        return out

    def identifiers(self, item: Any) -> Any:
        if isinstance(item, list):
            return [self.identifiers(i) for i in item]
        if not isinstance(item, dict):
            return item
        out = self.obj({k: v for k, v in item.items() if k != "value"})
        if isinstance(item.get("value"), str):
            out["value"] = self.p.ident(item["value"])
        return out

    def human_name(self, name: dict[str, Any]) -> dict[str, Any]:
        family = name.get("family")
        given = [g for g in name.get("given") or [] if isinstance(g, str)]
        for part in (name.get("text"), *(name.get("prefix") or []), *(name.get("suffix") or [])):
            if isinstance(part, str):
                self.p.name(part)
                self.p.names.update(part.split())
        out: dict[str, Any] = {k: name[k] for k in ("use",) if k in name}
        if isinstance(family, str):
            out["family"] = self.p.name(family)
        if given:
            out["given"] = [self.p.name(g) for g in given]
        return out

    def context(self, context: dict[str, Any]) -> dict[str, Any]:
        out = self.obj(context)
        for key in ID_CONTEXT:
            if isinstance(context.get(key), str):
                out[key] = self.p.ident(context[key])
        for key in REF_CONTEXT:
            if isinstance(context.get(key), str):
                out[key] = self.p.reference(context[key])
        if isinstance(context.get("selections"), list):
            out["selections"] = [
                self.p.reference(s) if isinstance(s, str) else s for s in context["selections"]
            ]
        return out


def _sweep(value: Any, patterns: list[_Pattern], key: str = "") -> Any:
    """Second pass: originals left inside other strings (URLs, free text) replaced."""
    if isinstance(value, dict):
        return {k: _sweep(v, patterns, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_sweep(v, patterns, key) for v in value]
    if isinstance(value, str) and key not in CODED:
        for pattern, replace in patterns:
            value = pattern.sub(_by(replace), value)
    return value


_Pattern = tuple[re.Pattern[str], Callable[[str], str]]


def _by(replace: Callable[[str], str]) -> Callable[[re.Match[str]], str]:
    return lambda match: replace(match.group(0))


def _words(words: Iterable[str], flags: int = 0) -> re.Pattern[str] | None:
    ordered = sorted(set(words), key=len, reverse=True)
    if not ordered:
        return None
    alternatives = "|".join(re.escape(w) for w in ordered)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", flags)


def _patterns(p: Pseudonyms) -> list[_Pattern]:
    """Ids (exact, 5+ characters: shorter ones would hit doses and codes), names (any case)."""
    ids = _words(i for i in p.ids if len(i) >= MIN_FREE_TEXT_ID)
    names = _words((n for n in p.names if len(n) > 1), re.IGNORECASE)
    found: list[_Pattern] = []
    if ids is not None:
        found.append((ids, p.ident))
    if names is not None:
        found.append((names, p.name))
    return found


def patient_of(request: dict[str, Any], bundle: dict[str, Any]) -> str:
    """The case's patient id (context first, else the bundle's Patient)."""
    context = request.get("context")
    if isinstance(context, dict) and isinstance(context.get("patientId"), str):
        return str(context["patientId"])
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            return str(resource.get("id") or "")
    return ""


def _structural(source: Path, p: Pseudonyms) -> tuple[dict[str, Any], str, set[date]]:
    """One case's files after the structural pass, its patient id and the days it mentions."""
    docs = {
        name: orjson.loads((source / name).read_bytes())
        for name in FILES
        if (source / name).exists()
    }
    request = docs.get("request.json") or {}
    patient = patient_of(request, docs.get("patient.json") or {})
    walker = _Walker(p)
    out: dict[str, Any] = {}
    for name, doc in docs.items():
        if name == "request.json" and isinstance(doc, dict):
            body = walker.obj({k: v for k, v in doc.items() if k != "context"})
            if isinstance(doc.get("context"), dict):
                body["context"] = walker.context(doc["context"])
            out[name] = body
        else:
            out[name] = walker.value(doc)
    return out, patient, _days(orjson.dumps(docs).decode())


def _days(text: str) -> set[date]:
    found = set()
    for match in EMBEDDED_DATE.finditer(text):
        try:
            found.add(date(*(int(g) for g in match.groups()[:3])))
        except ValueError:
            continue
    return found


def deidentify_dir(source: Path, target: Path, p: Pseudonyms | None = None) -> list[Path]:
    """Every case under `source` de-identified under `target`; the new directories."""
    p = p or Pseudonyms()
    # Every case's structure first: a name met in one case is swept from all free text.
    cases = [(case, *_structural(case, p)) for case in scenario_dirs(source)]
    days: dict[str, set[date]] = defaultdict(set)
    for _case, _docs, patient, seen in cases:
        days[patient] |= seen
    shifts = {patient: p.shift(patient, seen) for patient, seen in days.items()}
    patterns = _patterns(p)
    written = []
    for case, docs, patient, _seen in cases:
        shift = shifts[patient]
        folder = target / case.name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, doc in docs.items():
            clean = shift_dates(_sweep(doc, patterns), shift)
            (folder / name).write_bytes(orjson.dumps(clean, option=orjson.OPT_INDENT_2) + b"\n")
        written.append(folder)
    return written
