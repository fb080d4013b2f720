"""Scenario fixtures: `fixtures/<scenario>/` with patient.json, request.json, expected.json."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.fhir.search import InMemoryFhir
from cds_service.fhir.templates import fill_template
from cds_service.fhir.timeshift import Shift, shift_dates
from cds_service.model.events import card_recommendation_id, card_recommendations
from cds_service.model.registry import Registry
from fhir_mappings.dates import parse_fhir_date

# "@now-30d" -> a dateTime 30 days ago; "@today-40y" -> a date. Keeps fixtures from rotting.
_RELATIVE = re.compile(r"^@(now|today)(?:([+-])(\d+)([mhdwy]))?$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def roll(value: Any, now: datetime) -> Any:
    """Replace relative date strings anywhere in `value` with real ones."""
    if isinstance(value, dict):
        return {key: roll(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [roll(item, now) for item in value]
    if isinstance(value, str) and value.startswith("@") and (match := _RELATIVE.match(value)):
        kind, sign, amount, unit = match.groups()
        offset = timedelta(seconds=int(amount) * _UNITS[unit]) if amount else timedelta()
        moment = now + offset if sign == "+" else now - offset
        if kind == "today":
            return date(moment.year, moment.month, moment.day).isoformat()
        return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return value


@dataclass(frozen=True)
class Scenario:
    """One fixture scenario, with dates rolled to `now`."""

    name: str
    path: Path
    patient_bundle: dict[str, Any]
    request: dict[str, Any]
    expected: list[dict[str, Any]] | None

    @property
    def resources(self) -> list[dict[str, Any]]:
        return [e["resource"] for e in self.patient_bundle.get("entry", []) if "resource" in e]

    @property
    def patient_id(self) -> str:
        for resource in self.resources:
            if resource.get("resourceType") == "Patient":
                return str(resource["id"])
        return str(self.request.get("context", {}).get("patientId", ""))

    @property
    def fixed_prefetch(self) -> bool:
        """The scenario pins what the client sent (e.g. a failed fetch): not refetchable."""
        return "prefetch" in self.request

    @property
    def service_id(self) -> str:
        return str(self.request["service"])


def _read(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


# A captured case keeps its dates as received and says when: "capturedAt".
CAPTURED_AT = "capturedAt"


def captured_shift(request: Any, now: datetime) -> Shift | None:
    """For a captured case: the move that puts its dates where they were relative to now."""
    when = request.get(CAPTURED_AT) if isinstance(request, dict) else None
    then = parse_fhir_date(when)  # an instant: a time with its zone
    if then is None or not then.has_time or then.offset is None:
        return None
    return Shift.between(then.start, now)


def load_scenario(path: Path, now: datetime | None = None) -> Scenario:
    """Relative dates rolled to now; a captured case's dates moved by the time since capture."""
    now = now or datetime.now(UTC)
    bundle_path = path / "patient.json"
    expected_path = path / "expected.json"
    bundle = roll(_read(bundle_path), now) if bundle_path.exists() else {"entry": []}
    request = roll(_read(path / "request.json"), now)
    shift = captured_shift(request, now)
    if shift is not None:
        request = shift_dates({k: v for k, v in request.items() if k != CAPTURED_AT}, shift)
        bundle = shift_dates(bundle, shift)
    return Scenario(
        name=path.name,
        path=path,
        patient_bundle=bundle,
        request=request,
        expected=_read(expected_path) if expected_path.exists() else None,
    )


def scenario_dirs(root: Path) -> Iterator[Path]:
    """`root` when it is a scenario directory, else the scenario directories in it."""
    if (root / "request.json").exists():
        yield root
        return
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if (path / "request.json").exists():
            yield path


def iter_scenarios(root: Path, now: datetime | None = None) -> Iterator[Scenario]:
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if (path / "request.json").exists():
            yield load_scenario(path, now)


def build_request(
    scenario: Scenario, registry: Registry, *, prefetch: bool = True
) -> dict[str, Any]:
    """A complete CDS Hooks request; prefetch filled from the patient's resources."""
    service = registry.get(scenario.service_id)
    context = {"userId": "Practitioner/example", "patientId": scenario.patient_id}
    context.update(scenario.request.get("context", {}))
    body: dict[str, Any] = {
        "hook": scenario.request.get("hook", service.hook),
        "hookInstance": str(uuid.uuid4()),
        "context": context,
    }
    for key in ("fhirServer", "fhirAuthorization", "extension"):
        if key in scenario.request:
            body[key] = scenario.request[key]
    if "prefetch" in scenario.request:
        body["prefetch"] = scenario.request["prefetch"]
    elif prefetch:
        store = InMemoryFhir(scenario.resources)
        body["prefetch"] = {
            key: store.query(fill_template(template, context))
            for key, template in service.prefetch.items()
        }
    return body


def project_card(card: dict[str, Any]) -> dict[str, Any]:
    """The stable part of a card that golden files compare (no uuids, no free detail)."""
    projected: dict[str, Any] = {
        "recommendationId": card_recommendation_id(card),
        "indicator": card.get("indicator"),
        "summary": card.get("summary"),
    }
    folded = [rec_id for rec_id, _ in card_recommendations(card)]
    if len(folded) > 1:  # a folded card names every recommendation it stands for
        projected["folded"] = folded
    suggestions = [
        {
            "label": s.get("label"),
            "actions": [
                {k: a[k] for k in ("type", "resourceId") if k in a}
                | ({"resourceType": a["resource"]["resourceType"]} if "resource" in a else {})
                for a in s.get("actions", [])
            ],
        }
        for s in card.get("suggestions", [])
    ]
    if suggestions:
        projected["suggestions"] = suggestions
    return projected


# Optional keys of a golden card: text its detail, action descriptions and created/updated
# resources must (or must never) contain, e.g. the mg/kg actually suggested, or "? mg".
TEXT_CHECKS = ("textIncludes", "textExcludes")


def card_text(card: dict[str, Any]) -> str:
    """Everything a clinician reads on a card or in the orders it would create."""
    parts = [str(card.get("summary") or ""), str(card.get("detail") or "")]
    for suggestion in card.get("suggestions", []) or []:
        parts.append(str(suggestion.get("label") or ""))
        for action in suggestion.get("actions", []) or []:
            parts.append(str(action.get("description") or ""))
            if "resource" in action:
                parts.append(orjson.dumps(action["resource"]).decode())
    return "\n".join(parts)


def _text_problems(want: dict[str, Any], cards: list[dict[str, Any]]) -> list[str]:
    problems = []
    text = "\n".join(card_text(c) for c in cards)
    for needle in want.get("textIncludes", []):
        if needle not in text:
            problems.append(f"{want.get('summary')!r}: text lacks {needle!r}")
    for needle in want.get("textExcludes", []):
        if needle in text:
            problems.append(f"{want.get('summary')!r}: text must not contain {needle!r}")
    return problems


def compare_cards(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences between golden projections and actual cards, order-insensitive."""
    got = [project_card(card) for card in actual]
    key = lambda c: (c.get("recommendationId") or "", c.get("summary") or "")  # noqa: E731
    problems = []
    bare = [{k: v for k, v in want.items() if k not in TEXT_CHECKS} for want in expected]
    for want, plain in sorted(zip(expected, bare, strict=True), key=lambda p: key(p[1])):
        if plain not in got:
            problems.append(f"missing card: {orjson.dumps(plain).decode()}")
        elif any(k in want for k in TEXT_CHECKS):
            problems += _text_problems(
                want, [c for c, g in zip(actual, got, strict=True) if g == plain]
            )
    for have in sorted(got, key=key):
        if have not in bare:
            problems.append(f"unexpected card: {orjson.dumps(have).decode()}")
    return problems
