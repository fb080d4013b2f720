"""Value sets and unit tables (fhir_mappings/data/*.yaml), loaded and validated once."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from fhir_mappings import domain

DRUG_CLASSES = frozenset(
    {
        domain.GLUCOCORTICOID,
        domain.METHOTREXATE,
        domain.MMF,
        domain.IVIG,
        domain.RITUXIMAB,
        domain.CYCLOPHOSPHAMIDE,
        domain.JAK_INHIBITOR,
        domain.MUSCLE_RELAXANT,
        domain.NSAID,
        domain.BENZODIAZEPINE,
        domain.ANTISPASTIC,
    }
)
SEVERITIES = frozenset({"severe", "moderate", "mild"})
ROUTES = frozenset({"oral", "subcutaneous", "intravenous", "intramuscular"})
_SEEN_TEXTS = 8192  # texts remembered per matcher (bounded: dosage texts are free text)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def remembered(memo: dict[Any, Any], key: Any, limit: int, make: Callable[[], Any]) -> Any:
    """memo[key], made once (a pure function of key); the memo is emptied at `limit` entries."""
    found = memo.get(key)
    if found is None:
        if len(memo) >= limit:
            memo.clear()
        found = memo[key] = make()
    return found


class TerminologyError(ValueError):
    """A value-set or unit data file is missing, malformed or inconsistent."""


def normalize_text(text: str) -> str:
    """Case-fold, strip zero-width characters and collapse whitespace (tall-man safe)."""
    return " ".join(text.translate(_ZERO_WIDTH).casefold().split())


def normalize_icd(code: str) -> str:
    return code.replace(".", "").strip().upper()


@dataclass(frozen=True)
class CodeInfo:
    """Where one code came from and whether it still needs verification."""

    system: str
    code: str
    display: str | None
    source: str
    verify: bool


@dataclass(frozen=True)
class UnitRule:
    factor: float
    offset: float = 0.0


@dataclass(frozen=True)
class Quantity:
    name: str
    canonical: str | None
    units: dict[str, UnitRule]
    folded: dict[str, UnitRule]
    keep_original_unit: bool = False


@dataclass(frozen=True)
class ObservationKind:
    kind: str
    quantity: str
    analyte: str | None


@dataclass(frozen=True)
class NameMatcher:
    """Whole-word, case-insensitive names with per-name exclusions."""

    pattern: re.Pattern[str] | None
    targets: dict[str, tuple[str, ...]]  # normalized name -> keys
    excludes: dict[str, tuple[str, ...]]  # key -> normalized excluded phrases
    # Drug and condition texts repeat across resources and requests: answers by text.
    _seen: dict[str, tuple[tuple[str, str], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def find(self, text: str | None) -> list[tuple[str, str]]:
        """(key, matched name) pairs found in text."""
        if not text or self.pattern is None:
            return []
        seen = self._seen.get(text)
        if seen is None:
            seen = tuple(self._find(text))
            if len(self._seen) >= _SEEN_TEXTS:
                self._seen.clear()
            self._seen[text] = seen
        return list(seen)

    def _find(self, text: str) -> list[tuple[str, str]]:
        assert self.pattern is not None
        norm = normalize_text(text)
        found: list[tuple[str, str]] = []
        for m in self.pattern.finditer(norm):
            name = m.group(1)
            for key in self.targets.get(name, ()):
                if any(ex in norm for ex in self.excludes.get(key, ())):
                    continue
                if (key, name) not in found:
                    found.append((key, name))
        return found


@dataclass(frozen=True)
class Terminology:
    """All value sets; every lookup is system + code, never code alone."""

    version: str
    units_version: str
    systems: dict[str, str]
    codes: tuple[CodeInfo, ...]
    observation_codes: dict[tuple[str, str], ObservationKind]
    panel_codes: frozenset[tuple[str, str]]
    quantities: dict[str, Quantity]
    kind_quantity: dict[str, str]
    ingredient_class: dict[str, str]
    rxnorm_ingredients: dict[str, str]
    rxnorm_products: dict[str, str]
    product_displays: dict[str, str]  # RxNorm product code -> clinical-drug name (strength)
    atc_substances: dict[str, str]
    atc_class_prefixes: tuple[tuple[str, str], ...]
    drug_names: NameMatcher
    condition_codes: dict[tuple[str, str], frozenset[str]]
    condition_prefixes: tuple[tuple[str, str, frozenset[str]], ...]
    condition_names: NameMatcher
    severity_codes: dict[tuple[str, str], str]
    service_request_codes: dict[tuple[str, str], str]
    service_request_names: NameMatcher
    route_codes: dict[tuple[str, str], str]
    verify_codes: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    panels: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # by name
    # Drugs named by a request's concept, classified (fhir_mappings.medications): by content.
    drug_memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    # Dosages mapped to Doses (fhir_mappings.dosage), by content, strength and product name.
    dose_memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rxnorm(self) -> str:
        return self.systems["rxnorm"]

    @property
    def atc(self) -> str:
        return self.systems["atc"]

    def is_verified(self, system: str, code: str) -> bool:
        """False for codes CODES.md (or this project) marks "verify"."""
        return (system, code) not in self.verify_codes


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise TerminologyError(f"{where}: {what}")


def _mapping(obj: Any, where: str) -> dict[str, Any]:
    _need(isinstance(obj, dict), where, "expected a mapping")
    return obj


def _list(obj: Any, where: str) -> list[Any]:
    _need(isinstance(obj, list), where, "expected a list")
    return obj


def _str(obj: Any, where: str) -> str:
    _need(isinstance(obj, str) and bool(obj.strip()), where, "expected a non-empty string")
    return str(obj)


class _Builder:
    """Validates the YAML documents while building the Terminology indexes."""

    def __init__(self, terms: dict[str, Any], units: dict[str, Any]) -> None:
        self.terms = terms
        self.units = units
        self.codes: list[CodeInfo] = []
        self.systems: dict[str, str] = {}

    def system(self, alias: Any, where: str) -> str:
        alias = _str(alias, where + ".system")
        _need(alias in self.systems, where, f"unknown system alias {alias!r}")
        return self.systems[alias]

    def code_entry(self, entry: Any, where: str, system: str | None = None) -> CodeInfo:
        entry = _mapping(entry, where)
        sys_url = system or self.system(entry.get("system"), where)
        code = entry.get("code")
        _need(isinstance(code, str | int) and str(code).strip() != "", where, "missing code")
        source = entry.get("source")
        _need(isinstance(source, str) and bool(source.strip()), where, f"code {code}: no source")
        verify = entry.get("verify", False)
        _need(isinstance(verify, bool), where, f"code {code}: verify must be true/false")
        display = entry.get("display")
        info = CodeInfo(sys_url, str(code), str(display) if display else None, source, verify)
        self.codes.append(info)
        return info

    def quantities(self) -> dict[str, Quantity]:
        out: dict[str, Quantity] = {}
        qs = _mapping(self.units.get("quantities"), "units.yaml quantities")
        for name, spec in qs.items():
            where = f"units.yaml quantities.{name}"
            spec = _mapping(spec, where)
            canonical = spec.get("canonical")
            keep = bool(spec.get("keep_original_unit", False))
            _need(keep or isinstance(canonical, str), where, "needs a canonical unit")
            rules: dict[str, UnitRule] = {}
            folded: dict[str, UnitRule] = {}
            for unit, rule in _mapping(spec.get("units", {}), where + ".units").items():
                rule = _mapping(rule, f"{where}.units.{unit}")
                factor: Any = rule.get("factor")
                offset: Any = rule.get("offset", 0)
                ok = isinstance(factor, int | float) and factor > 0
                _need(ok, f"{where}.units.{unit}", "factor must be a positive number")
                _need(isinstance(offset, int | float), f"{where}.units.{unit}", "bad offset")
                _str(rule.get("source"), f"{where}.units.{unit}.source")
                r = UnitRule(float(factor), float(offset))
                rules[str(unit)] = r
                prior = folded.get(str(unit).casefold())
                _need(prior in (None, r), where, f"units differing only by case: {unit}")
                folded[str(unit).casefold()] = r
            if canonical is not None:
                _need(rules.get(canonical) == UnitRule(1.0), where, "canonical unit needs factor 1")
            out[str(name)] = Quantity(str(name), canonical, rules, folded, keep)
        return out

    def build(self) -> Terminology:
        version = _str(self.terms.get("version"), "terminology.yaml version")
        units_version = _str(self.units.get("version"), "units.yaml version")
        for alias, url in _mapping(self.terms.get("systems"), "systems").items():
            self.systems[str(alias)] = _str(url, f"systems.{alias}")
        quantities = self.quantities()
        obs, kind_q = self.observations(quantities)
        named_panels = {
            str(name): tuple(
                (c.system, c.code)
                for c in (self.code_entry(e, f"panels.{name}") for e in _list(entries, "panels"))
            )
            for name, entries in _mapping(self.terms.get("panels", {}), "panels").items()
        }
        panels = frozenset(code for codes in named_panels.values() for code in codes)
        drugs = self.drugs()
        cond_codes, cond_prefixes, cond_names = self.conditions()
        severity = {}
        for i, e in enumerate(_list(self.terms.get("condition_severity", []), "severity")):
            c = self.code_entry(e, f"condition_severity[{i}]")
            sev = e.get("severity")
            _need(sev in SEVERITIES, f"condition_severity[{i}]", f"bad severity {sev!r}")
            severity[(c.system, c.code)] = str(sev)
        sr_codes, sr_names = self.service_requests()
        routes = {}
        for i, e in enumerate(_list(self.terms.get("routes", []), "routes")):
            c = self.code_entry(e, f"routes[{i}]")
            _need(e.get("route") in ROUTES, f"routes[{i}]", f"bad route {e.get('route')!r}")
            routes[(c.system, c.code)] = str(e["route"])
        return Terminology(
            version=version,
            units_version=units_version,
            systems=dict(self.systems),
            codes=tuple(self.codes),
            observation_codes=obs,
            panel_codes=panels,
            quantities=quantities,
            kind_quantity=kind_q,
            condition_codes=cond_codes,
            condition_prefixes=cond_prefixes,
            condition_names=cond_names,
            severity_codes=severity,
            service_request_codes=sr_codes,
            service_request_names=sr_names,
            route_codes=routes,
            verify_codes=frozenset((c.system, c.code) for c in self.codes if c.verify),
            panels=named_panels,
            **drugs,
        )

    def observations(
        self, quantities: dict[str, Quantity]
    ) -> tuple[dict[tuple[str, str], ObservationKind], dict[str, str]]:
        out: dict[tuple[str, str], ObservationKind] = {}
        kind_q: dict[str, str] = {}
        for kind, spec in _mapping(self.terms.get("observations"), "observations").items():
            where = f"observations.{kind}"
            spec = _mapping(spec, where)
            q = _str(spec.get("quantity"), where + ".quantity")
            _need(q in quantities, where, f"quantity {q!r} is not in units.yaml")
            kind_q[str(kind)] = q
            for i, e in enumerate(_list(spec.get("codes"), where + ".codes")):
                c = self.code_entry(e, f"{where}.codes[{i}]")
                key = (c.system, c.code)
                _need(key not in out, where, f"code {c.code} is already in another kind")
                out[key] = ObservationKind(str(kind), q, e.get("analyte"))
        for hit in out.values():
            clash = hit.analyte in kind_q and hit.analyte != hit.kind
            _need(not clash, f"observations.{hit.kind}", f"analyte {hit.analyte} is a kind")
        return out, kind_q

    def drugs(self) -> dict[str, Any]:
        classes = _mapping(self.terms.get("drug_classes"), "drug_classes")
        _need(set(classes) == set(DRUG_CLASSES), "drug_classes", "must list every domain class")
        prefixes: list[tuple[str, str]] = []
        for cls, spec in classes.items():
            for p in _list(_mapping(spec, f"drug_classes.{cls}").get("atc_prefixes"), cls):
                prefixes.append((_str(p, f"drug_classes.{cls}").upper(), str(cls)))
            _str(spec.get("source"), f"drug_classes.{cls}.source")
        ing_class: dict[str, str] = {}
        rx_ing: dict[str, str] = {}
        rx_prod: dict[str, str] = {}
        displays: dict[str, str] = {}
        atc: dict[str, str] = {}
        names: dict[str, list[str]] = {}
        excludes: dict[str, tuple[str, ...]] = {}
        for ing, spec in _mapping(self.terms.get("ingredients"), "ingredients").items():
            where = f"ingredients.{ing}"
            spec = _mapping(spec, where)
            klass = spec.get("class")
            _need(klass in DRUG_CLASSES, where, f"unknown class {klass!r}")
            ing_class[str(ing)] = str(klass)
            for field_name, index, sys_alias in (
                ("rxnorm_ingredient", rx_ing, "rxnorm"),
                ("rxnorm_products", rx_prod, "rxnorm"),
                ("atc", atc, "atc"),
            ):
                for i, e in enumerate(_list(spec.get(field_name, []), where)):
                    c = self.code_entry(e, f"{where}.{field_name}[{i}]", self.systems[sys_alias])
                    code = c.code.upper() if sys_alias == "atc" else c.code
                    _need(code not in index, where, f"code {code} listed twice")
                    index[code] = str(ing)
                    if field_name == "rxnorm_products" and c.display:
                        displays[code] = c.display
            for n in _list(spec.get("names"), where + ".names"):
                names.setdefault(normalize_text(_str(n, where)), []).append(str(ing))
            excludes[str(ing)] = tuple(
                normalize_text(str(x)) for x in spec.get("exclude_names", [])
            )
        return {
            "ingredient_class": ing_class,
            "rxnorm_ingredients": rx_ing,
            "rxnorm_products": rx_prod,
            "product_displays": displays,
            "atc_substances": atc,
            "atc_class_prefixes": tuple(sorted(prefixes, key=lambda p: -len(p[0]))),
            "drug_names": _matcher(names, excludes),
        }

    def conditions(
        self,
    ) -> tuple[
        dict[tuple[str, str], frozenset[str]],
        tuple[tuple[str, str, frozenset[str]], ...],
        NameMatcher,
    ]:
        allowed = set(_list(self.terms.get("condition_categories"), "condition_categories"))
        codes: dict[tuple[str, str], frozenset[str]] = {}
        prefixes: list[tuple[str, str, frozenset[str]]] = []
        for i, e in enumerate(_list(self.terms.get("conditions"), "conditions")):
            where = f"conditions[{i}]"
            c = self.code_entry(e, where)
            cats = frozenset(_list(e.get("categories"), where + ".categories"))
            _need(bool(cats) and cats <= allowed, where, f"unknown categories {sorted(cats)}")
            icd = "icd-10" in c.system
            code = normalize_icd(c.code) if icd else c.code
            if e.get("prefix"):
                _need(icd, where, "prefix matching is for ICD-10 only")
                prefixes.append((c.system, code, cats))
            else:
                codes[(c.system, code)] = codes.get((c.system, code), frozenset()) | cats
        names: dict[str, list[str]] = {}
        excludes: dict[str, tuple[str, ...]] = {}
        everywhere = tuple(
            normalize_text(_str(x, "condition_name_exclusions"))
            for x in _list(self.terms.get("condition_name_exclusions", []), "exclusions")
        )
        for i, e in enumerate(_list(self.terms.get("condition_names"), "condition_names")):
            where = f"condition_names[{i}]"
            n = normalize_text(_str(_mapping(e, where).get("name"), where))
            cats = frozenset(_list(e.get("categories"), where + ".categories"))
            _need(bool(cats) and cats <= allowed, where, f"unknown categories {sorted(cats)}")
            key = "|".join(sorted(cats)) + "@" + n
            names.setdefault(n, []).append(key)
            own = tuple(normalize_text(str(x)) for x in e.get("exclude_names", []))
            excludes[key] = own + everywhere
        return codes, tuple(prefixes), _matcher(names, excludes)

    def service_requests(self) -> tuple[dict[tuple[str, str], str], NameMatcher]:
        codes: dict[tuple[str, str], str] = {}
        names: dict[str, list[str]] = {}
        for kind, spec in _mapping(self.terms.get("service_requests", {}), "sr").items():
            where = f"service_requests.{kind}"
            for i, e in enumerate(_list(_mapping(spec, where).get("codes", []), where)):
                c = self.code_entry(e, f"{where}.codes[{i}]")
                codes[(c.system, c.code)] = str(kind)
            for n in spec.get("names", []):
                names.setdefault(normalize_text(_str(n, where)), []).append(str(kind))
        return codes, _matcher(names, {})


def _matcher(names: dict[str, list[str]], excludes: dict[str, tuple[str, ...]]) -> NameMatcher:
    if not names:
        return NameMatcher(None, {}, excludes)
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])({alternatives})(?![\w])")
    return NameMatcher(pattern, {n: tuple(k) for n, k in names.items()}, excludes)


def _read_yaml(name: str) -> dict[str, Any]:
    try:
        text = resources.files("fhir_mappings.data").joinpath(name).read_text("utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise TerminologyError(f"{name}: cannot be read: {exc}") from exc
    return _mapping(data, name)


def build_terminology(terms: dict[str, Any], units: dict[str, Any]) -> Terminology:
    """Validate two parsed documents (terminology.yaml, units.yaml) into a Terminology."""
    try:
        return _Builder(_mapping(terms, "terminology"), _mapping(units, "units")).build()
    except TerminologyError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise TerminologyError(f"malformed terminology data: {exc!r}") from exc


@lru_cache(maxsize=1)
def load_terminology() -> Terminology:
    """Load the value sets shipped in fhir_mappings/data (cached)."""
    return build_terminology(_read_yaml("terminology.yaml"), _read_yaml("units.yaml"))
