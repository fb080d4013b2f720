"""`cds-service replay`: send recorded CDS Hooks requests or fixture scenarios, show the cards."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import requests
from flask import Flask

from cds_service.config import load_settings
from cds_service.fhir.scenarios import Scenario, build_request, compare_cards, load_scenario, roll
from cds_service.guideline import load_engine
from cds_service.hooks.routes import UNAVAILABLE_KEY
from cds_service.hooks.services import SNOOZED_KEY, build_registry
from cds_service.model.registry import Registry
from cds_service.ops.logs import quiet_startup
from fhir_mappings import load_terminology

_COLOURS = {"critical": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m"}
_RESET = "\033[0m"


class ReplayError(Exception):
    """A path that is neither a request file nor a scenario directory (exit 2)."""


@dataclass
class Replay:
    """One request to send: its name, service, body and the golden cards if any."""

    name: str
    service_id: str
    body: dict[str, Any]
    expected: list[dict[str, Any]] | None
    patient_bundle: dict[str, Any] | None = None
    # The scenario states the prefetch its EHR sent (failures included): --fetch keeps it.
    own_prefetch: bool = False


def _scenario_for_hook(path: Path, hook: str, registry: Registry) -> Scenario:
    """A directory with only patient.json: the patient plus a bare request for `hook`."""
    services = [s for s in registry if s.hook == hook]
    if not services:
        raise ReplayError(f"no service answers hook {hook!r}")
    bundle = roll(orjson.loads((path / "patient.json").read_bytes()), datetime.now(UTC))
    patient_id = Scenario(path.name, path, bundle, {}, None).patient_id
    request = {"hook": hook, "service": services[0].id, "context": {"patientId": patient_id}}
    return Scenario(path.name, path, bundle, request, None)


def load_replay(path: Path, registry: Registry, hook: str | None) -> Replay:
    """A scenario directory (or its request.json) or a recorded request file."""
    if path.is_file() and path.name == "request.json" and (path.parent / "patient.json").exists():
        path = path.parent
    if path.is_dir():
        if (path / "request.json").exists():
            scenario = load_scenario(path)
        elif (path / "patient.json").exists() and hook:
            scenario = _scenario_for_hook(path, hook, registry)
        else:
            raise ReplayError(f"{path}: no request.json (or patient.json with --hook)")
        body = build_request(scenario, registry)
        if hook and hook != body["hook"]:
            raise ReplayError(f"{path}: the scenario is a {body['hook']} request, not {hook}")
        return Replay(
            scenario.name,
            scenario.service_id,
            body,
            scenario.expected,
            scenario.patient_bundle,
            own_prefetch="prefetch" in scenario.request,
        )
    if not path.is_file():
        raise ReplayError(f"{path}: no such file or directory")
    try:
        body = roll(orjson.loads(path.read_bytes()), datetime.now(UTC))
    except orjson.JSONDecodeError as exc:
        raise ReplayError(f"{path}: not JSON ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("hook"), str):
        raise ReplayError(f"{path}: not a CDS Hooks request (no hook)")
    service_id = body.pop("service", None) or next(
        (s.id for s in registry if s.hook == body["hook"]), None
    )
    if service_id is None:
        raise ReplayError(f"{path}: no service answers hook {body['hook']!r}")
    body.setdefault("hookInstance", str(uuid.uuid4()))
    return Replay(path.stem, service_id, body, None)


class Sender:
    """In-process (create_app, auth off, reachable by nobody) or to a running service at --url."""

    def __init__(self, url: str | None, token: str | None, fetch: bool = False) -> None:
        self.url = url.rstrip("/") if url else None
        self.token = token
        self._tmp = tempfile.TemporaryDirectory(prefix="cds-replay-")
        self.app: Flask | None = None
        if self.url is None:
            self.app = _in_process_app(self._tmp.name, fetch)
            self.registry: Registry = self.app.extensions["cds_registry"]
        else:
            # Only the service ids and prefetch templates are needed here: no app, no warnings.
            load_terminology()
            self.registry = build_registry(load_engine(load_settings()["SITE_POLICY_FILE"] or None))

    def send(self, replay: Replay) -> tuple[int, Any]:
        path = f"/cds-services/{replay.service_id}"
        if self.app is not None:
            response = self.app.test_client().post(path, json=replay.body)
            return response.status_code, response.get_json(silent=True)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        remote = requests.post(f"{self.url}{path}", json=replay.body, headers=headers, timeout=30)
        try:
            return remote.status_code, remote.json()
        except ValueError:
            return remote.status_code, {"error": {"message": remote.text[:500]}}

    def close(self) -> None:
        self._tmp.cleanup()


def _in_process_app(data_dir: str, fetch: bool) -> Flask:
    """The service inside this command: authentication off is safe (no socket), so quiet."""
    from cds_service.app import create_app

    config: dict[str, Any] = {"AUTH": "disabled", "DATA_DIR": data_dir, "METRICS": False}
    if fetch:  # the fixture FHIR server this command starts on loopback
        config |= {"FHIR_SERVER_ALLOWLIST": "http://127.0.0.1", "FHIR_ALLOW_LOOPBACK_HTTP": True}
    with quiet_startup():
        app = create_app(config)
    # Cards print on stdout; a server's per-request lines would only repeat them.
    for name in ("cds_service.access", "cds_service.hook"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return app


def _paint(text: str, indicator: str, colour: bool) -> str:
    return f"{_COLOURS.get(indicator, '')}{text}{_RESET}" if colour else text


def _action(action: dict[str, Any]) -> str:
    target = action.get("resourceId") or (action.get("resource") or {}).get("resourceType", "")
    return f"{action.get('type')} {target}"


def render(cards: list[dict[str, Any]], colour: bool) -> Iterator[str]:
    """The cards as a clinician would scan them: critical first, suggestions beneath."""
    order = {"critical": 0, "warning": 1, "info": 2}
    for card in sorted(cards, key=lambda c: order.get(c.get("indicator", ""), 3)):
        indicator = str(card.get("indicator", "?"))
        yield "  " + _paint(f"[{indicator.upper()}]", indicator, colour) + f" {card.get('summary')}"
        source = (card.get("source") or {}).get("label")
        if source:
            yield f"      source: {source}"
        for suggestion in card.get("suggestions") or []:
            actions = ", ".join(_action(a) for a in suggestion.get("actions") or [])
            mark = " (recommended)" if suggestion.get("isRecommended") else ""
            yield f"      -> {suggestion.get('label')}{mark}" + (
                f"  [{actions}]" if actions else ""
            )
        for link in card.get("links") or []:
            yield f"      link: {link.get('label')} <{link.get('url')}>"


def replay_one(sender: Sender, replay: Replay, check: bool, out: TextIO, colour: bool) -> bool:
    """Send, print, and (with check) compare to expected.json; True when all is well."""
    started = time.perf_counter()
    status, payload = sender.send(replay)
    elapsed = (time.perf_counter() - started) * 1000
    payload = payload if isinstance(payload, dict) else {}
    found = payload.get("cards")
    cards: list[dict[str, Any]] = found if isinstance(found, list) else []
    print(
        f"== {replay.name} -> {replay.service_id}: HTTP {status}, {len(cards)} card(s), "
        f"{elapsed:.0f} ms",
        file=out,
    )
    if status != 200:
        error = payload.get("error") or {}
        print(f"  error {error.get('code', '')}: {error.get('message', '')}", file=out)
    for line in render(cards, colour):
        print(line, file=out)
    unavailable = (payload.get("extension") or {}).get(UNAVAILABLE_KEY) or {}
    for key, reason in unavailable.items():
        print(f"  unavailable input {key}: {reason}", file=out)
    for held in (payload.get("extension") or {}).get(SNOOZED_KEY) or []:
        print(f"  snoozed (overridden recently): {held}", file=out)
    if not check:
        return status == 200  # a call that failed (404 from a wrong --url, 401, 5xx) fails
    if replay.expected is None:
        print("  CHECK FAILED: no expected.json to compare with", file=out)
        return False
    problems = ([f"HTTP {status}"] if status != 200 else []) + compare_cards(replay.expected, cards)
    for problem in problems:
        print(f"  CHECK FAILED: {problem}", file=out)
    if not problems:
        print("  check: OK", file=out)
    return not problems


@contextmanager
def _fetching(replays: list[Replay], enabled: bool) -> Iterator[None]:
    """With --fetch: serve each scenario's patient on loopback and drop the prefetch.

    A scenario whose request.json states its own prefetch (a failed lab query, say) is sent
    as written: fetching would replace the very failure it is about.
    """
    if not enabled:
        yield
        return
    from cds_service.fhir.fixture_server import create_fixture_wsgi, running_server
    from cds_service.fhir.store import FixtureStore

    stores = {r.name: FixtureStore.from_bundle(r.patient_bundle or {}) for r in replays}
    with running_server(create_fixture_wsgi(stores)) as base:
        for replay in (r for r in replays if not r.own_prefetch):
            replay.body.pop("prefetch", None)
            replay.body["fhirServer"] = f"{base}/{replay.name}"
        yield


def _run(args: argparse.Namespace) -> int:
    sender = Sender(args.url, args.token, fetch=args.fetch)
    colour = sys.stdout.isatty() and not args.no_colour
    passed = failed = 0
    try:
        replays = [load_replay(Path(raw), sender.registry, args.hook) for raw in args.paths]
        if args.fetch and any(r.patient_bundle is None for r in replays):
            raise ReplayError("--fetch needs scenario directories (a patient.json to serve)")
        with _fetching(replays, args.fetch):
            for replay in replays:
                if replay_one(sender, replay, args.check, sys.stdout, colour):
                    passed += 1
                else:
                    failed += 1
        print(f"{passed} passed, {failed} failed", flush=True)
    except ReplayError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:
        print(f"replay: cannot reach {args.url}: {type(exc).__name__}", file=sys.stderr)
        return 2
    finally:
        sender.close()
    return 0 if failed == 0 else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="send recorded requests or fixture scenarios and print the cards"
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="request.json or scenario dir")
    parser.add_argument("--url", default=None, help="service base URL (default: in-process)")
    parser.add_argument("--check", action="store_true", help="diff against expected.json")
    parser.add_argument("--hook", default=None, help="hook for a directory with only patient.json")
    parser.add_argument("--token", default=None, help="bearer JWT for --url")
    parser.add_argument(
        "--fetch",
        action="store_true",
        help="send no prefetch: serve each scenario's patient.json on a loopback fixture FHIR "
        "server and let the service fetch it",
    )
    parser.add_argument("--no-colour", action="store_true")
    parser.set_defaults(func=_run)
