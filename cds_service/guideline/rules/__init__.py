"""One pure function per recommendation: RuleContext -> card intents."""

from __future__ import annotations

from collections.abc import Callable

from cds_service.guideline.facts import RuleContext
from cds_service.guideline.intents import CardIntent
from cds_service.guideline.rules.assess import assess1_workup
from cds_service.guideline.rules.cau2 import cau2_benzodiazepines
from cds_service.guideline.rules.cautions import (
    cau1_relaxant_duration,
    cau3_nsaid_duration,
    cau4_cardiac,
    relief1_combination,
)
from cds_service.guideline.rules.immunosuppression import is1_prednisone, is2_methotrexate, is3_mmf
from cds_service.guideline.rules.monitoring import (
    mon1_monitoring,
    mon2_steroid_effects,
    pt1_physiotherapy,
    skin1_skin,
)
from cds_service.guideline.rules.refractory import ref1_refractory
from cds_service.guideline.rules.scope import scope1_unusable_condition

# RELIEF-0 ("For mild to moderate pain:" has no content) deliberately has no rule.
RULES: dict[str, Callable[[RuleContext], list[CardIntent]]] = {
    "ASSESS-1": assess1_workup,
    "RELIEF-1": relief1_combination,
    "IS-1": is1_prednisone,
    "IS-2": is2_methotrexate,
    "IS-3": is3_mmf,
    "REF-1": ref1_refractory,
    "PT-1": pt1_physiotherapy,
    "SKIN-1": skin1_skin,
    "MON-1": mon1_monitoring,
    "MON-2": mon2_steroid_effects,
    "CAU-1": cau1_relaxant_duration,
    "CAU-2": cau2_benzodiazepines,
    "CAU-3": cau3_nsaid_duration,
    "CAU-4": cau4_cardiac,
    "SCOPE-1": scope1_unusable_condition,
}
