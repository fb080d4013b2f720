"""Load and validate the guideline knowledge; invalid content raises ConfigError."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cds_service.errors import ConfigError

# Recommendation ids the rule functions implement; the knowledge must describe exactly these.
RULE_IDS = (
    "ASSESS-1",
    "RELIEF-1",
    "IS-1",
    "IS-2",
    "IS-3",
    "REF-1",
    "PT-1",
    "SKIN-1",
    "MON-1",
    "MON-2",
    "CAU-1",
    "CAU-2",
    "CAU-3",
    "CAU-4",
    "SCOPE-1",
)
HOOKS = frozenset({"patient-view", "order-select", "order-sign"})
# Value-set references the rules read; each must be present (lists of mapping keys).
VALUE_SET_KEYS = (
    "condition_categories",
    "drug_classes",
    "steroid_sparing",
    "immunosuppressive",
    "ck_kinds",
    "weight_kinds",
    "troponin_kinds",
    "glucose_kinds",
    "hba1c_kinds",
    "bp_systolic_kinds",
    "bp_diastolic_kinds",
    "cardiac_specific_troponins",
    "skeletal_muscle_troponins",
)
# The guideline's own numbers and the notes the rules read: each must be present.
NUMBER_KEYS = ("rituximab_effect_weeks",)
NOTE_KEYS = ("troponin_analytes",)
# Rollout modes : active = cards returned; silent = evaluated and audited, never
# returned; off = not evaluated.
ROLLOUT_MODES = ("active", "silent", "off")
ROLLOUT_KEY = "rollout"
SYSTEM_KEYS = ("recommendation", "override_reason", "rxnorm", "snomed", "loinc", "ucum")


@dataclass(frozen=True)
class CodeRef:
    """A Coding the service may send (system already resolved to its URI)."""

    system: str
    code: str
    display: str
    verify: bool = False

    def as_fhir(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class WorkupItem:
    """ASSESS-1: one item of the initial evaluation."""

    key: str
    label: str
    kinds: tuple[str, ...]
    order: CodeRef


@dataclass(frozen=True)
class ObservationNeed:
    """One Observation prefetch key: the measurement kinds and panels it asks for."""

    kinds: tuple[str, ...]
    panels: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySetting:
    """A site-policy number: not from the guideline, overridable, named on cards."""

    name: str
    value: float
    default: float
    unit: str
    description: str
    low: float
    high: float
    overridden: bool = False


@dataclass(frozen=True)
class Note:
    """Text a card carries that is not guideline content, with its named source."""

    text: str
    source: str


@dataclass(frozen=True)
class Recommendation:
    id: str
    title: str
    scope: str
    hooks: frozenset[str]
    refs: tuple[int, ...]
    quote: str
    override_reasons: tuple[str, ...]


@dataclass(frozen=True)
class ValueSetDecision:
    """A value-set membership checked against the guideline's intent, with its source."""

    value_set: str
    members: tuple[str, ...]
    decision: str
    reason: str
    source: str


@dataclass(frozen=True)
class Knowledge:
    """Everything the rules know, validated."""

    version: str
    guideline_title: str
    guideline_label: str
    systems: Mapping[str, str]
    references: Mapping[int, str]
    policy: Mapping[str, PolicySetting]
    value_sets: Mapping[str, Any]
    scopes: Mapping[str, frozenset[str]]
    medications: Mapping[str, CodeRef]
    routes: Mapping[str, CodeRef]
    physio_referral: CodeRef
    physio_on_record: frozenset[tuple[str, str]]
    physio_on_record_kinds: frozenset[str]
    workup: tuple[WorkupItem, ...]
    prefetch_observations: Mapping[str, ObservationNeed]
    ck_order: CodeRef
    override_reasons: Mapping[str, str]
    recommendations: Mapping[str, Recommendation]
    # prednisone mg per mg of each glucocorticoid (anti-inflammatory equivalence), and its source
    prednisone_factor: Mapping[str, float] = field(default_factory=dict)
    equivalence_source: str = ""
    value_set_decisions: tuple[ValueSetDecision, ...] = ()
    numbers: Mapping[str, float] = field(default_factory=dict)  # the guideline's own numbers
    notes: Mapping[str, Note] = field(default_factory=dict)
    # Site policy: recommendation id -> rollout mode; absent means "active".
    rollout: Mapping[str, str] = field(default_factory=dict)

    def mode(self, rec_id: str) -> str:
        """Rollout mode of a recommendation: active, silent or off."""
        return self.rollout.get(rec_id, "active")

    def p(self, name: str) -> float:
        """Current value of a site-policy setting."""
        return self.policy[name].value

    def number(self, name: str) -> float:
        """A number the guideline itself gives (guideline_numbers)."""
        return self.numbers[name]

    def kinds(self, name: str) -> tuple[str, ...]:
        return tuple(self.value_sets[name])


def _need(mapping: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise ConfigError(f"guideline knowledge: {where}.{key} is missing")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"guideline knowledge: {where}.{key} has the wrong type")
    return value


def _code(raw: Any, systems: Mapping[str, str], where: str) -> CodeRef:
    coding = raw.get("coding", raw) if isinstance(raw, Mapping) else raw
    system_key = _need(coding, "system", where, str)
    if system_key not in systems:
        raise ConfigError(f"guideline knowledge: {where}.system {system_key!r} is unknown")
    return CodeRef(
        system=systems[system_key],
        code=str(_need(coding, "code", where, str)),
        display=str(coding.get("display") or ""),
        verify=bool(raw.get("verify", coding.get("verify", False))),
    )


def _policy(raw: Any) -> dict[str, PolicySetting]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("guideline knowledge: site_policy is missing")
    out = {}
    for name, spec in raw.items():
        where = f"site_policy.{name}"
        default = _need(spec, "default", where, (int, float))
        low = _need(spec, "min", where, (int, float))
        high = _need(spec, "max", where, (int, float))
        if not low <= default <= high:
            raise ConfigError(
                f"guideline knowledge: {where}.default {default} outside {low}..{high}"
            )
        out[name] = PolicySetting(
            name=name,
            value=float(default),
            default=float(default),
            unit=str(_need(spec, "unit", where, str)),
            description=str(_need(spec, "description", where, str)),
            low=float(low),
            high=float(high),
        )
    return out


def _recommendations(
    raw: Any, references: Mapping[int, str], reasons: Mapping[str, str], scopes: Mapping[str, Any]
) -> dict[str, Recommendation]:
    if not isinstance(raw, Mapping):
        raise ConfigError("guideline knowledge: recommendations is missing")
    missing = set(RULE_IDS) - set(raw)
    unknown = set(raw) - set(RULE_IDS)
    if missing or unknown:
        raise ConfigError(
            "guideline knowledge: recommendations do not match the rules "
            f"(missing {sorted(missing)}, unknown {sorted(unknown)})"
        )
    out = {}
    for rec_id, spec in raw.items():
        where = f"recommendations.{rec_id}"
        scope = _need(spec, "scope", where, str)
        if scope not in scopes:
            raise ConfigError(f"guideline knowledge: {where}.scope {scope!r} is not a scope")
        hooks = frozenset(_need(spec, "hooks", where, list))
        if not hooks or not hooks <= HOOKS:
            raise ConfigError(f"guideline knowledge: {where}.hooks must be among {sorted(HOOKS)}")
        refs = tuple(_need(spec, "refs", where, list))
        for ref in refs:
            if ref not in references:
                raise ConfigError(f"guideline knowledge: {where} cites unknown ref {ref!r}")
        override = tuple(_need(spec, "override_reasons", where, list))
        for reason in override:
            if reason not in reasons:
                raise ConfigError(f"guideline knowledge: {where} names unknown reason {reason!r}")
        out[rec_id] = Recommendation(
            id=rec_id,
            title=_need(spec, "title", where, str),
            scope=scope,
            hooks=hooks,
            refs=refs,
            quote=" ".join(_need(spec, "quote", where, str).split()),
            override_reasons=override,
        )
    return out


def _numbers(raw: Any) -> dict[str, float]:
    for key in NUMBER_KEYS:
        _need(raw, key, "guideline_numbers", Mapping)
    out = {}
    for name, spec in (raw or {}).items():
        where = f"guideline_numbers.{name}"
        value = _need(spec, "value", where, (int, float))
        _need(spec, "quote", where, str)
        out[str(name)] = float(value)
    return out


def _notes(raw: Any) -> dict[str, Note]:
    for key in NOTE_KEYS:
        _need(raw, key, "notes", Mapping)
    return {
        str(name): Note(
            text=" ".join(_need(spec, "text", f"notes.{name}", str).split()),
            source=" ".join(_need(spec, "source", f"notes.{name}", str).split()),
        )
        for name, spec in (raw or {}).items()
    }


def _check_fold(value_sets: Mapping[str, Any]) -> None:
    fold = value_sets.get("fold_info", [])
    if not isinstance(fold, list) or set(fold) - set(RULE_IDS):
        raise ConfigError("guideline knowledge: value_sets.fold_info must list recommendation ids")


def _check_value_sets(value_sets: Mapping[str, Any]) -> None:
    for key in VALUE_SET_KEYS:
        items = _need(value_sets, key, "value_sets", list)
        if not items or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"guideline knowledge: value_sets.{key} must list names")
    classes = set(value_sets["drug_classes"])
    caution = _need(value_sets, "cardiac_caution", "value_sets", Mapping)
    for key in ("steroid_sparing", "immunosuppressive"):
        unknown = set(value_sets[key]) - classes
        if unknown:
            raise ConfigError(
                f"guideline knowledge: value_sets.{key} names unknown drug classes "
                f"{sorted(unknown)}"
            )
    if set(_need(caution, "classes", "value_sets.cardiac_caution", list)) - classes:
        raise ConfigError("guideline knowledge: value_sets.cardiac_caution names unknown classes")
    _need(caution, "ingredients", "value_sets.cardiac_caution", list)


def _equivalence(raw: Any) -> tuple[dict[str, float], str]:
    """Prednisone mg per mg of each glucocorticoid, from 'mg equal to 5 mg prednisone'."""
    spec = _need(raw, "glucocorticoid_equivalence", "", Mapping)
    source = _need(spec, "source", "glucocorticoid_equivalence", str)
    table = _need(spec, "mg_equal_to_5_mg_prednisone", "glucocorticoid_equivalence", Mapping)
    factors = {}
    for name, mg in table.items():
        if isinstance(mg, bool) or not isinstance(mg, int | float) or not 0 < mg < 1000:
            raise ConfigError(f"guideline knowledge: glucocorticoid_equivalence.{name} is invalid")
        factors[str(name)] = 5.0 / float(mg)
    if factors.get("prednisone") != 1.0:
        raise ConfigError("guideline knowledge: glucocorticoid_equivalence.prednisone must be 5")
    return factors, " ".join(source.split())


def _decisions(raw: Any, classes: set[str], categories: set[str]) -> tuple[ValueSetDecision, ...]:
    out = []
    for i, item in enumerate(_need(raw, "value_set_decisions", "", list)):
        where = f"value_set_decisions[{i}]"
        value_set = _need(item, "value_set", where, str)
        if value_set not in classes | categories:
            raise ConfigError(f"guideline knowledge: {where}.value_set {value_set!r} is unknown")
        out.append(
            ValueSetDecision(
                value_set=value_set,
                members=tuple(str(m) for m in _need(item, "members", where, list)),
                decision=_need(item, "decision", where, str),
                reason=" ".join(_need(item, "reason", where, str).split()),
                source=_need(item, "source", where, str),
            )
        )
    return tuple(out)


def parse_knowledge(raw: Any) -> Knowledge:
    """Validate the knowledge document and build the typed view of it."""
    if not isinstance(raw, Mapping):
        raise ConfigError("guideline knowledge: the document is not a mapping")
    version = _need(raw, "version", "", str)
    guideline = _need(raw, "guideline", "", Mapping)
    systems = _need(raw, "systems", "", Mapping)
    for key in SYSTEM_KEYS:
        _need(systems, key, "systems", str)
    references = _need(raw, "references", "", Mapping)
    reasons = _need(raw, "override_reasons", "", Mapping)
    value_sets = _need(raw, "value_sets", "", Mapping)
    scopes_raw = _need(raw, "scopes", "", Mapping)
    _check_value_sets(value_sets)
    _check_fold(value_sets)
    categories = set(_need(value_sets, "condition_categories", "value_sets", list))
    scopes = {}
    for name, spec in scopes_raw.items():
        cats = frozenset(_need(spec, "categories", f"scopes.{name}", list))
        if not cats <= categories:
            raise ConfigError(f"guideline knowledge: scopes.{name} names unknown categories")
        scopes[name] = cats
    orderables = _need(raw, "orderables", "", Mapping)
    meds = _need(orderables, "medications", "orderables", Mapping)
    routes = _need(orderables, "routes", "orderables", Mapping)
    physio = _need(orderables, "physiotherapy_referral", "orderables", Mapping)
    workup = tuple(
        WorkupItem(
            key=_need(item, "key", "orderables.workup", str),
            label=_need(item, "label", "orderables.workup", str),
            kinds=tuple(_need(item, "kinds", "orderables.workup", list)),
            order=_code(
                {**item["order"], "verify": item.get("verify", False)},
                systems,
                f"orderables.workup.{item.get('key')}",
            ),
        )
        for item in _need(orderables, "workup", "orderables", list)
    )
    factors, equivalence_source = _equivalence(raw)
    return Knowledge(
        prednisone_factor=factors,
        equivalence_source=equivalence_source,
        value_set_decisions=_decisions(raw, set(value_sets["drug_classes"]), categories),
        version=version,
        guideline_title=_need(guideline, "title", "guideline", str),
        guideline_label=_need(guideline, "label", "guideline", str),
        systems=dict(systems),
        references={int(k): str(v) for k, v in references.items()},
        policy=_policy(raw.get("site_policy")),
        value_sets=dict(value_sets),
        scopes=scopes,
        medications={k: _code(v, systems, f"orderables.medications.{k}") for k, v in meds.items()},
        routes={k: _code(v, systems, f"orderables.routes.{k}") for k, v in routes.items()},
        physio_referral=_code(physio, systems, "orderables.physiotherapy_referral"),
        physio_on_record=frozenset(
            (systems[c["system"]], str(c["code"])) for c in physio.get("on_record", [])
        ),
        physio_on_record_kinds=frozenset(physio.get("on_record_kinds", [])),
        workup=workup,
        prefetch_observations=_prefetch_observations(raw, value_sets, workup),
        ck_order=_code(_need(orderables, "ck_order", "orderables", Mapping), systems, "ck_order"),
        override_reasons={str(k): str(v) for k, v in reasons.items()},
        recommendations=_recommendations(raw.get("recommendations"), references, reasons, scopes),
        numbers=_numbers(raw.get("guideline_numbers")),
        notes=_notes(raw.get("notes")),
    )


def _prefetch_observations(
    raw: Mapping[str, Any], value_sets: Mapping[str, Any], workup: tuple[WorkupItem, ...]
) -> dict[str, ObservationNeed]:
    """Each Observation prefetch key with the kinds it asks for; every *_kinds set is asked."""
    where = "prefetch_observations"
    needs: dict[str, ObservationNeed] = {}
    asked: set[str] = set()
    for key, spec in _need(raw, where, "", Mapping).items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"guideline knowledge: {where}.{key} must be a mapping")
        names = list(spec.get("value_sets", []))
        unknown = [name for name in names if not str(name).endswith("_kinds")]
        unknown += [name for name in names if name not in value_sets]
        if unknown:
            raise ConfigError(
                f"guideline knowledge: {where}.{key} names unknown kind value sets {unknown}"
            )
        asked.update(names)
        kinds = [kind for name in names for kind in value_sets[name]]
        if spec.get("workup", False) is True:
            kinds += [kind for item in workup for kind in item.kinds]
        panels = tuple(str(p) for p in spec.get("panels", []))
        needs[str(key)] = ObservationNeed(kinds=tuple(dict.fromkeys(kinds)), panels=panels)
    forgotten = sorted(k for k in value_sets if k.endswith("_kinds") and k not in asked)
    if forgotten:
        raise ConfigError(f"guideline knowledge: no {where} key asks for {forgotten}")
    return needs


def content_digest(raw: Mapping[str, Any]) -> str:
    """SHA-256 of the knowledge content, `version` aside: comments and layout do not count."""
    content = {key: value for key, value in raw.items() if key != "version"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"site policy file {path} cannot be read: {exc.strerror}") from exc
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"site policy file {path} is not valid YAML/JSON: {exc}") from exc


def _rollout(raw: Any, known: Mapping[str, Recommendation]) -> dict[str, str]:
    """The site's `rollout:` mapping, validated: known recommendation ids, known modes."""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"site policy: {ROLLOUT_KEY} must map recommendation ids to one of "
            f"{', '.join(ROLLOUT_MODES)}"
        )
    modes = {}
    for rec_id, mode in raw.items():
        if rec_id not in known:
            raise ConfigError(
                f"site policy: {ROLLOUT_KEY}.{rec_id} is not a recommendation",
                details={"known": sorted(known)},
            )
        if mode not in ROLLOUT_MODES:
            raise ConfigError(
                f"site policy: {ROLLOUT_KEY}.{rec_id}={mode!r} must be one of "
                f"{', '.join(ROLLOUT_MODES)}"
            )
        modes[str(rec_id)] = str(mode)
    return modes


def apply_site_policy(knowledge: Knowledge, overrides: Mapping[str, Any]) -> Knowledge:
    """Override known site-policy keys only, within their documented bounds."""
    policy = dict(knowledge.policy)
    rollout = dict(knowledge.rollout)
    for name, value in overrides.items():
        if name == ROLLOUT_KEY:
            rollout.update(_rollout(value, knowledge.recommendations))
            continue
        if name not in policy:
            raise ConfigError(
                f"site policy: unknown setting {name!r}", details={"known": sorted(policy)}
            )
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"site policy: {name} must be a number")
        current = policy[name]
        if not current.low <= float(value) <= current.high:
            raise ConfigError(
                f"site policy: {name}={value} is outside {current.low:g}..{current.high:g}"
            )
        policy[name] = replace(current, value=float(value), overridden=True)
    return replace(knowledge, policy=policy, rollout=rollout)


def shipped_knowledge_text() -> str:
    """The knowledge document this release ships (cds_service/guideline/data/knowledge.yaml)."""
    return (
        resources.files("cds_service.guideline")
        .joinpath("data/knowledge.yaml")
        .read_text(encoding="utf-8")
    )


def load_knowledge(
    site_policy_file: str | None = None, knowledge_file: str | None = None
) -> Knowledge:
    """Read the shipped (or given) knowledge, then the site's overrides (YAML or JSON) if any."""
    if knowledge_file:
        try:
            text = Path(knowledge_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"knowledge file {knowledge_file} cannot be read: {exc.strerror}"
            ) from exc
    else:
        text = shipped_knowledge_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"guideline knowledge is not valid YAML: {exc}") from exc
    knowledge = parse_knowledge(raw)
    if site_policy_file:
        doc = _read_document(Path(site_policy_file))
        if doc is None:
            doc = {}
        if not isinstance(doc, Mapping):
            raise ConfigError(f"site policy file {site_policy_file} must hold a mapping")
        knowledge = apply_site_policy(knowledge, doc)
    return knowledge
