"""`cds-service knowledge diff`: what a new knowledge version changes, case by case.

Both versions run over the same scenario directories (fixtures or captures), through the same
path as a hook call (request schema, prefetch policy, handler), at the same moment. Cards of
silent recommendations count too: the question is what the rules say, not what is shown.
Per recommendation: cards added, removed and changed (summary, indicator, suggested dose).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_service.errors import CDSError
from cds_service.fhir.prefetch import FetchingPrefetch
from cds_service.fhir.scenarios import Scenario, build_request, load_scenario, project_card
from cds_service.guideline import GuidelineEngine
from cds_service.guideline.knowledge import load_knowledge
from cds_service.hooks.calls import parse_hook_request, run_hook
from cds_service.hooks.services import build_registry
from cds_service.model.events import card_recommendation_id
from cds_service.model.registry import Registry

COMPARED = ("summary", "indicator", "dose", "suggestions")


@dataclass(frozen=True)
class CardView:
    """What a reviewer compares of one card."""

    recommendation_id: str
    summary: str
    indicator: str
    dose: str
    suggestions: str

    def differs(self, other: CardView) -> list[str]:
        return [name for name in COMPARED if getattr(self, name) != getattr(other, name)]

    def to_json(self) -> dict[str, str]:
        return {
            "summary": self.summary,
            "indicator": self.indicator,
            **({"dose": self.dose} if self.dose else {}),
        }


def _dose(card: dict[str, Any]) -> str:
    """The suggested doses: each created or updated order's doseQuantity (value and unit)."""
    doses = []
    for suggestion in card.get("suggestions") or []:
        for action in suggestion.get("actions") or []:
            resource = action.get("resource") or {}
            for dosage in resource.get("dosageInstruction") or []:
                for rate in dosage.get("doseAndRate") or []:
                    quantity = rate.get("doseQuantity") or {}
                    if "value" in quantity:
                        doses.append(f"{quantity['value']:g} {quantity.get('unit', '')}".strip())
    return ", ".join(doses)


def card_view(card: dict[str, Any]) -> CardView:
    projected = project_card(card)
    labels = [s.get("label") or "" for s in projected.get("suggestions", [])]
    return CardView(
        recommendation_id=card_recommendation_id(card) or "-",
        summary=str(card.get("summary") or ""),
        indicator=str(card.get("indicator") or ""),
        dose=_dose(card),
        suggestions=" | ".join(labels),
    )


@dataclass
class Change:
    """One card difference in one case."""

    case: str
    kind: str  # added, removed, changed
    old: CardView | None = None
    new: CardView | None = None

    @property
    def fields(self) -> list[str]:
        return self.old.differs(self.new) if self.old and self.new else []

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"case": self.case, "kind": self.kind}
        if self.old:
            data["old"] = self.old.to_json()
        if self.new:
            data["new"] = self.new.to_json()
        if self.kind == "changed":
            data["fields"] = self.fields
        return data


@dataclass
class DiffReport:
    old_version: str
    new_version: str
    cases: int = 0
    changes: dict[str, list[Change]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(self.changes.values()) or bool(self.errors)

    def totals(self) -> dict[str, int]:
        counts = {"added": 0, "removed": 0, "changed": 0}
        for items in self.changes.values():
            for change in items:
                counts[change.kind] += 1
        return counts

    def affected_cases(self) -> list[str]:
        return sorted({c.case for items in self.changes.values() for c in items} | set(self.errors))

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.old_version,
            "to": self.new_version,
            "cases": self.cases,
            "recommendations": {
                rec_id: {
                    **{k: sum(1 for c in items if c.kind == k) for k in self.totals()},
                    "changes": [c.to_json() for c in items],
                }
                for rec_id, items in sorted(self.changes.items())
                if items
            },
            "errors": {case: {"from": a, "to": b} for case, (a, b) in self.errors.items()},
            "totals": self.totals(),
            "affectedCases": self.affected_cases(),
        }


class Runner:
    """One knowledge version's services, called in-process without Flask."""

    def __init__(self, engine: GuidelineEngine) -> None:
        self.engine = engine
        self.registry: Registry = build_registry(engine)
        self.prefetch = FetchingPrefetch(None)  # prefetch as recorded; nothing is fetched

    def cards(self, scenario: Scenario) -> list[dict[str, Any]]:
        """The cards the recommendations give (returned and silent); CDSError if refused."""
        body = build_request(scenario, self.registry)
        service = self.registry.get(scenario.service_id)
        result = run_hook(service, parse_hook_request(body, service), self.prefetch)
        return result.cards + result.silent_cards


def _outcome(runner: Runner, scenario: Scenario) -> tuple[list[CardView], str]:
    try:
        return [card_view(card) for card in runner.cards(scenario)], ""
    except CDSError as exc:
        return [], f"{exc.code}: {exc.message}"


def compare(case: str, old: list[CardView], new: list[CardView]) -> list[Change]:
    """Same cards cancel out; the rest pair up in order as changed, leftovers added/removed."""
    remaining_new = list(new)
    unmatched_old = []
    for card in old:
        if card in remaining_new:
            remaining_new.remove(card)
        else:
            unmatched_old.append(card)
    pairs = zip(unmatched_old, remaining_new, strict=False)
    changes = [Change(case, "changed", a, b) for a, b in pairs]
    changes += [Change(case, "removed", old=a) for a in unmatched_old[len(remaining_new) :]]
    changes += [Change(case, "added", new=b) for b in remaining_new[len(unmatched_old) :]]
    return changes


def diff_knowledge(
    old_file: str,
    new_file: str,
    case_paths: Iterable[Path],
    site_policy_file: str | None = None,
    labels: dict[Path, str] | None = None,
) -> DiffReport:
    """Run both knowledge versions over every case; ConfigError if either is invalid."""
    old = Runner(GuidelineEngine(load_knowledge(site_policy_file, old_file)))
    new = Runner(GuidelineEngine(load_knowledge(site_policy_file, new_file)))
    report = DiffReport(old.engine.version, new.engine.version)
    now = datetime.now(UTC)
    for path in case_paths:
        scenario = load_scenario(path, now)
        name = (labels or {}).get(path, str(path))
        report.cases += 1
        before, error_before = _outcome(old, scenario)
        after, error_after = _outcome(new, scenario)
        if error_before != error_after:
            report.errors[name] = (error_before or "answered", error_after or "answered")
        by_rec: dict[str, tuple[list[CardView], list[CardView]]] = defaultdict(lambda: ([], []))
        for card in before:
            by_rec[card.recommendation_id][0].append(card)
        for card in after:
            by_rec[card.recommendation_id][1].append(card)
        for rec_id, (a, b) in by_rec.items():
            report.changes[rec_id].extend(compare(name, a, b))
    return report


def format_report(report: DiffReport) -> str:
    """The diff as a reviewer reads it: per recommendation, then totals."""
    versions = f"{report.old_version} -> {report.new_version}"
    lines = [f"knowledge diff: {versions}, {report.cases} case(s)"]
    for rec_id, items in sorted(report.changes.items()):
        if not items:
            continue
        counts = {k: sum(1 for c in items if c.kind == k) for k in ("added", "removed", "changed")}
        lines.append(f"{rec_id}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        for change in items:
            if change.kind == "changed" and change.old and change.new:
                details = "; ".join(
                    f"{f} {getattr(change.old, f)!r} -> {getattr(change.new, f)!r}"
                    for f in change.fields
                )
                lines.append(f"  changed  {change.case}: {details}")
            else:
                card = change.new or change.old
                assert card is not None
                lines.append(f"  {change.kind:<8} {change.case}: [{card.indicator}] {card.summary}")
    for case, (before, after) in sorted(report.errors.items()):
        lines.append(f"answer changed {case}: {before} -> {after}")
    totals = report.totals()
    lines.append(
        f"total: {totals['added']} added, {totals['removed']} removed, {totals['changed']} "
        f"changed, in {len(report.affected_cases())} of {report.cases} case(s)"
    )
    return "\n".join(lines)
