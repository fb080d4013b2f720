"""One pure function per recommendation: RuleContext -> card intents."""

from __future__ import annotations

from collections.abc import Callable

from cds_service.guideline.facts import RuleContext
from cds_service.guideline.intents import CardIntent
from cds_service.guideline.rules.cau2 import cau2_benzodiazepines

RULES: dict[str, Callable[[RuleContext], list[CardIntent]]] = {
    "CAU-2": cau2_benzodiazepines,
}
