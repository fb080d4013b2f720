"""One logging set-up for serve, workers and commands: text or JSON lines on stderr."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, current_app, request

from cds_service.model.events import HookRecord

# Attributes a record may carry (logging's `extra=`) that JSON lines show as their own fields.
FIELDS = ("service", "hook", "hookInstance", "durationMs", "cards", "method", "path", "status")
ACCESS = logging.getLogger("cds_service.access")
HOOK = logging.getLogger("cds_service.hook")
_STARTED = "cds.started"
# Client-chosen strings shown in a log line: a plain token, else quoted and cut.
_PLAIN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    """`2026-12-03T23:59:01.123Z INFO cds_service.access GET /cds-services 200 1.2ms`."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the FIELDS a record carries."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    _cds_handler = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current sys.stderr."""


def _ours(handler: logging.Handler) -> bool:
    return getattr(handler, "_cds_handler", False)


_QUIET = [False]  # set while a serve worker rebuilds the app (see quiet_startup)
# Libraries whose INFO lines say nothing an operator needs.
_CHATTY = {"alembic.runtime.plugins": logging.WARNING}


def _not_quieted(record: logging.LogRecord) -> bool:
    return not _QUIET[0] or record.levelno >= logging.ERROR


def configure_logging(level: str, log_format: str, *, force: bool = False) -> None:
    """Install the one stderr handler on the root logger (again: reformat it, never add).

    Without `force` an application that configured logging itself (or a test runner) keeps
    its handlers: only the service's level is set. `force` (the command line) replaces them.
    """
    root = logging.getLogger()
    logging.getLogger("cds_service").setLevel(level)
    for name, chatty_level in _CHATTY.items():
        logging.getLogger(name).setLevel(chatty_level)
    ours = [h for h in root.handlers if _ours(h)]
    foreign = [h for h in root.handlers if not _ours(h)]
    if foreign and not force:
        return
    for handler in foreign:
        root.removeHandler(handler)
    handler = ours[0] if ours else _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    if not ours:
        handler.addFilter(_not_quieted)
        root.addHandler(handler)
    root.setLevel(level)


@contextmanager
def quiet_startup() -> Iterator[None]:
    """A serve worker rebuilds the app: its start-up lines were printed once by the parent."""
    _QUIET[0] = True
    try:
        yield
    finally:
        _QUIET[0] = False


def loggable(value: str) -> str:
    """A client-chosen string as it may appear in a log line (no forged lines, bounded)."""
    return value if _PLAIN.fullmatch(value) else repr(value)[:80]


def route_path() -> str:
    """The request's route, never its query string: a registered service id is shown, other
    path values (file names, anything a client typed) stay as the route's placeholders."""
    rule = request.url_rule
    if rule is None:
        return "(no route)"
    path = rule.rule
    service_id = (request.view_args or {}).get("service_id")
    registry = current_app.extensions.get("cds_registry")
    if isinstance(service_id, str) and registry is not None and _registered(registry, service_id):
        path = path.replace("<service_id>", service_id)
    return path


def _registered(registry: Any, service_id: str) -> bool:
    try:
        registry.get(service_id)
    except Exception:
        return False
    return True


def _start_clock() -> None:
    request.environ[_STARTED] = time.perf_counter()


def elapsed_ms() -> float:
    started = request.environ.get(_STARTED)
    return (time.perf_counter() - started) * 1000.0 if started else 0.0


def _access_line(response: Response) -> Response:
    path = route_path()
    duration = round(elapsed_ms(), 1)
    ACCESS.info(
        "%s %s %d %.1fms",
        request.method,
        path,
        response.status_code,
        duration,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "durationMs": duration,
        },
    )
    return response


def log_hook_call(record: HookRecord) -> None:
    """A hook-call line with service, hook, hookInstance and duration (never the patient)."""
    duration = round(record.duration_ms, 1)
    instance = loggable(record.hook_instance)
    HOOK.info(
        "hook %s %s %s: %d card(s) in %.1fms",
        record.service_id,
        record.hook,
        instance,
        len(record.cards),
        duration,
        extra={
            "service": record.service_id,
            "hook": record.hook,
            "hookInstance": instance,
            "durationMs": duration,
            "cards": len(record.cards),
        },
    )


def init_app(app: Flask) -> None:
    """Logging from the settings, an access line per request, a line per hook call.

    Registered before the other extensions: its after_request runs last, seeing the final
    status (401 challenges, error pages) of every request.
    """
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    app.before_request(_start_clock)
    app.after_request(_access_line)
    app.extensions["cds_hook_listeners"].append(log_hook_call)
