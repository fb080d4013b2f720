"""The tester's console routes: pages, and the token endpoint the page calls."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, render_template, request

from cds_service.console.drugs import drug_choices
from cds_service.console.options import DOSE_UNITS, FREQUENCIES, ROUTES
from cds_service.console.summary import PatientCase, build_case
from cds_service.errors import CDSError, InvalidRequest
from cds_service.fhir.scenarios import Scenario, iter_scenarios, load_scenario
from cds_service.hooks.bodies import read_json
from cds_service.model.registry import Registry
from cds_service.security.flask_auth import public
from cds_service.security.local_issuer import LocalIssuer

log = logging.getLogger("cds_service.console")
bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)


class UnknownPatient(CDSError):
    status = 404
    code = "unknown_patient"


class ForeignOrigin(CDSError):
    status = 403
    code = "forbidden"


def _registry() -> Registry:
    registry: Registry = current_app.extensions["cds_registry"]
    return registry


def _services_by_hook() -> dict[str, str]:
    found: dict[str, str] = {}
    for service in _registry():
        found.setdefault(service.hook, service.id)
    return found


def service_base() -> str:
    """The URL clients reach this service at: what the verifier compares `aud` with."""
    configured = str(current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return configured or request.host_url.rstrip("/")


def _same_origin(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


@bp.get("/")
@public
def index() -> str:
    """The fixture patients with a one-line clinical summary each."""
    now = datetime.now(UTC)
    cases, broken = [], []
    root = Path(current_app.config["FIXTURES_DIR"])
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not (path / "request.json").is_file():
            continue
        try:
            cases.append(build_case(load_scenario(path, now), _registry(), now))
        except Exception as exc:  # one broken fixture must not hide the others
            log.warning("console: fixture %s cannot be shown: %s", path.name, type(exc).__name__)
            broken.append(path.name)
    return render_template("console/index.html", cases=cases, broken=broken)


def _find(name: str) -> Scenario:
    """One scenario directory by name; never a path outside FIXTURES_DIR."""
    path = Path(current_app.config["FIXTURES_DIR"]) / name
    if "/" in name or "\\" in name or name.startswith(".") or not (path / "request.json").is_file():
        raise UnknownPatient(f"no fixture scenario named {name!r}")
    try:
        return load_scenario(path)
    except (OSError, ValueError) as exc:  # orjson's decode error is a ValueError
        log.warning("console: fixture %s cannot be read: %s", name, type(exc).__name__)
        raise UnknownPatient(f"fixture scenario {name!r} cannot be read") from None


def _default_ck_uln() -> float | None:
    """REF-1/MON-1 site policy: the CK upper limit used when a result has no reference range."""
    knowledge = getattr(current_app.extensions["cds_engine"], "knowledge", None)
    try:
        return float(knowledge.p("ck_upper_limit_default")) if knowledge else None
    except (KeyError, AttributeError, TypeError, ValueError):
        return None


def _page_data(scenario: Scenario, case: PatientCase) -> dict[str, Any]:
    context = scenario.request.get("context") or {}
    drafts = (context.get("draftOrders") or {}).get("entry") or []
    terminology = current_app.extensions.get("cds_console_terminology")
    return {
        "scenario": scenario.name,
        "patientId": case.patient_id,
        "userId": context.get("userId", "Practitioner/console-tester"),
        "services": _services_by_hook(),
        "baseUrl": service_base(),
        "tokenUrl": "/console/api/token",
        "prefetch": case.prefetch,
        "draft": [e["resource"] for e in drafts if isinstance(e, dict) and "resource" in e],
        "selections": context.get("selections") or [],
        "trends": case.trends,
        "ckDefaultUln": _default_ck_uln(),
        # A generator: the fixtures are read only when the terminology lists no drugs.
        "drugs": drug_choices(
            terminology, iter_scenarios(Path(current_app.config["FIXTURES_DIR"]))
        ),
        "routes": ROUTES,
        "units": DOSE_UNITS,
        "frequencies": FREQUENCIES,
    }


@bp.get("/patients/<name>")
@public
def patient(name: str) -> str:
    """One patient: fire hooks, compose orders, see cards, trends and raw JSON."""
    scenario = _find(name)
    case = build_case(scenario, _registry(), datetime.now(UTC))
    return render_template(
        "console/patient.html",
        case=case,
        expected=scenario.expected,
        data=_page_data(scenario, case),
    )


def _report_url() -> str:
    """Path of the persistence layer's JSON override report, when that route exists."""
    for rule in current_app.url_map.iter_rules():
        if "report" in rule.endpoint and not rule.endpoint.startswith("console."):
            return rule.rule
    return ""


def _rollout() -> dict[str, str]:
    """Each recommendation's rollout mode, as discovery shows it."""
    engine = current_app.extensions["cds_engine"]
    knowledge = getattr(engine, "knowledge", None)
    if knowledge is None:
        return {}
    return {rec_id: knowledge.mode(rec_id) for rec_id in knowledge.recommendations}


@bp.get("/report")
@public
def report() -> str:
    """The governance report: per recommendation and period, fired, would have fired
    (silent rollout), distinct patients, accepted, overridden with reasons; override rate."""
    data: dict[str, Any] = {"baseUrl": service_base(), "tokenUrl": "/console/api/token"}
    data["reportUrl"] = _report_url()
    data["rollout"] = _rollout()
    return render_template("console/report.html", data=data)


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _known_host() -> bool:
    """Loopback or PUBLIC_BASE_URL's host: a DNS-rebinding page arrives under its own name."""
    host = urlsplit(request.host_url).hostname or ""
    host = f"[{host}]" if ":" in host else host
    configured = urlsplit(str(current_app.config.get("PUBLIC_BASE_URL") or "")).hostname
    return host in LOOPBACK_HOSTS or (configured is not None and host == configured)


@bp.post("/api/token")
@public
def token() -> dict[str, Any]:
    """A short-lived CDS Hooks JWT whose `aud` is exactly the URL about to be called."""
    if not _known_host():
        raise ForeignOrigin("tokens are minted only on this service's own host name")
    origin = request.headers.get("Origin")
    if origin and not (
        _same_origin(origin, request.host_url) or _same_origin(origin, service_base())
    ):
        raise ForeignOrigin("tokens are only minted for the console's own pages")
    body = read_json(request, max_bytes=4096, max_depth=4)
    url = body.get("url") if isinstance(body, dict) else None
    base = service_base()
    if not isinstance(url, str) or not url.startswith(base + "/") or "#" in url or "?" in url:
        raise InvalidRequest(
            "url must be an endpoint of this service", details={"url": [f"must start with {base}/"]}
        )
    issuer: LocalIssuer = current_app.extensions["cds_console_issuer"]
    lifetime = current_app.extensions["cds_console_token_lifetime"]
    return {"token": issuer.sign(url, lifetime=lifetime), "expiresIn": lifetime}
