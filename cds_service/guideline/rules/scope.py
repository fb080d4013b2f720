"""SCOPE-1: a diagnosis record that fails validation is reported, never read as absent."""

from __future__ import annotations

import re

from cds_service.guideline.facts import RuleContext
from cds_service.guideline.intents import CardIntent
from fhir_mappings.domain import MappingIssue


def unusable_scope_conditions(ctx: RuleContext) -> tuple[MappingIssue, ...]:
    """Conditions that failed validation and may put the patient in a guideline scope."""
    scope = ctx.knowledge.scopes["spasm"]
    return tuple(
        i
        for i in ctx.state.issues
        if i.resource.startswith("Condition/") and (i.categories & scope or i.code_unreadable)
    )


_PATTERN = re.compile(r"Expected `str` matching regex '.*?'(?=;|$)")


def readable(reason: str) -> str:
    """A validation reason as a clinician can read it (no regular expressions)."""
    return _PATTERN.sub("not a valid value (e.g. not a real calendar date)", reason)


def _seems(issue: MappingIssue) -> str:
    if issue.code_unreadable:
        return "its diagnosis code could not be read"
    return "it seems to record: " + ", ".join(sorted(issue.categories)).replace("_", " ")


def scope1_unusable_condition(ctx: RuleContext) -> list[CardIntent]:
    """Invalid is not absent: name the unusable record and what was not evaluated from it."""
    bad = unusable_scope_conditions(ctx)
    if not bad:
        return []
    in_scope = ctx.in_scope("spasm")
    consequence = (
        "The cards shown rest on this patient's other, valid diagnosis records; anything that "
        "depends only on the unusable record was not evaluated."
        if in_scope
        else "No valid record puts this patient in the guideline's scope, so its "
        "recommendations for patients with inflammatory myopathy or muscle spasm were NOT "
        "evaluated; only the checks for every patient (methotrexate dosing) were run."
    )
    return [
        CardIntent(
            "SCOPE-1",
            "info" if in_scope else "warning",
            "A diagnosis record could not be used (invalid data): guideline checks based on it "
            "were not run",
            (
                "\n".join(f"- {i.resource}: {readable(i.reason)}; {_seems(i)}" for i in bad),
                "The service never uses a record that fails validation as if it were valid, and "
                "never treats it as absent either.",
                consequence,
                "Correct the record in the EHR; the next call will then evaluate it.",
            ),
            problem="unusable-condition",
            inputs=tuple(f"{i.resource} (unusable: {readable(i.reason)})" for i in bad),
            with_override_reasons=False,
        )
    ]
