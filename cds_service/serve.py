"""`cds-service serve`: the app under gunicorn, a production WSGI server."""

from __future__ import annotations

import argparse
import errno
import functools
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from cds_service.app import create_app
from cds_service.config import load_settings
from cds_service.ops import logs
from cds_service.ops.metrics import MULTIPROC_ENV
from cds_service.persistence import migrate
from cds_service.persistence.db import is_sqlite
from cds_service.persistence.store import open_engine

log = logging.getLogger("cds_service.serve")
AppFactory = Callable[..., Flask]


# buffered (default): waitress inside each gunicorn worker reads whole requests before a thread
# takes them, so slow clients cost buffers, not threads. gthread: gunicorn's own,
# kept for comparison (benchmarks) and for deployments behind a buffering proxy.
WORKER_CLASSES = {
    "buffered": "cds_service.buffered_worker.BufferedWorker",
    "gthread": "gthread",
}


class UsageError(Exception):
    """A problem with how serve was started: one line, exit status 2."""


class _Logger(GunicornLogger):
    """gunicorn's own lines (arbiter, workers) go through the service's one log set-up."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers.clear()
            logger.propagate = True


class _Gunicorn(BaseApplication):
    """Embed gunicorn so `cds-service serve` needs no separate config file."""

    def __init__(self, options: dict[str, Any], factory: AppFactory) -> None:
        self.options = options
        self.factory = factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn 25.1+ opens a control socket (~/.gunicorn/gunicorn.ctl, shared by every
        # server of the user) that can resize or stop the server: not part of this service.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        # The parent built the app once and logged its start-up lines; workers stay quiet.
        with logs.quiet_startup():
            app = self.factory()
        log.info("worker %d ready", os.getpid())
        return app


def _worker_exited(_arbiter: Any, worker: Any) -> None:
    """A dead worker's live gauges (audit queue depth) leave the /metrics sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _check_port(host: str, port: int) -> None:
    """A port in use is one clear line, not gunicorn's five retries and a traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r} cannot be resolved ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} on {host} is already in use (another server?); "
                    "stop it or choose another with --port"
                ) from None
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _metrics_dir() -> str | None:
    """An empty directory for the workers' metric files; None when serve made none."""
    if os.environ.get(MULTIPROC_ENV):
        path = os.environ[MULTIPROC_ENV]
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):  # a previous run's files would add to this one's
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
        return None
    path = tempfile.mkdtemp(prefix="cds-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


def _serve(args: argparse.Namespace, factory: AppFactory = create_app) -> int:
    if args.profile:
        os.environ["CDS_PROFILE"] = args.profile
    settings = load_settings()  # ConfigError here: one line, exit 2 (cli.main)
    if args.public_base_url:
        os.environ["CDS_PUBLIC_BASE_URL"] = args.public_base_url
    elif settings["PROFILE"] == "local" and "CDS_PUBLIC_BASE_URL" not in os.environ:
        os.environ["CDS_PUBLIC_BASE_URL"] = f"http://{args.host}:{args.port}"
    _check_port(args.host, args.port)
    made_dir = _metrics_dir() if settings["METRICS"] else None
    master = os.getpid()
    try:
        _upgrade_sqlite_apart()
        # Build once in the parent so invalid settings or knowledge fail before forking.
        app = factory()
        base = (app.config["PUBLIC_BASE_URL"] or f"http://{args.host}:{args.port}").rstrip("/")
        log.info("CDS Hooks discovery: %s/cds-services", base)
        if app.config["CONSOLE"]:
            log.info("tester's console: %s/console/", base)
        if args.workers > 1 and app.config["AUTH"] == "required" and not app.config["REDIS_URL"]:
            # Each worker would keep its own jti store and rate counters.
            log.warning(
                "several workers without CDS_REDIS_URL: JWT replay protection and rate "
                "limits are per worker; set CDS_REDIS_URL in production"
            )
        _Gunicorn(_options(args, metrics=bool(settings["METRICS"])), factory).run()
    finally:
        # A worker leaving (recycled, or told to stop) unwinds this frame too, in its own
        # process: only the master may remove the directory the live workers write to.
        if made_dir and os.getpid() == master:
            shutil.rmtree(made_dir, ignore_errors=True)
    return 0


def _options(args: argparse.Namespace, *, metrics: bool) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": WORKER_CLASSES[args.worker_class],
        "threads": args.threads,
        "timeout": 30,
        # The service logs one access line per request itself (no tokens, no query strings).
        "accesslog": None,
        "logger_class": _Logger,
        "preload_app": False,
        # A worker that parsed a very large prefetch keeps that memory; recycling returns it.
        "max_requests": args.max_requests,
        "max_requests_jitter": max(args.max_requests // 10, 0),
    }
    if metrics:
        options["child_exit"] = _worker_exited
    return options


def _upgrade_sqlite_apart() -> None:
    """A SQLite schema behind the code is migrated by `cds-service db upgrade`, a child process.

    create_app would migrate it itself, but Alembic and Mako (about 11 MiB once they have
    migrated) would then stay in this process, whose memory every worker inherits.
    """
    try:
        settings = load_settings()
        engine = open_engine(settings)
        try:
            state = migrate.schema_state(engine) if is_sqlite(engine) else None
        finally:
            engine.dispose()
    except Exception:
        return  # create_app reports the problem in its own words
    if state is None or state.up_to_date or not set(state.current) <= migrate.known_revisions():
        return
    subprocess.run([sys.executable, "-m", "cds_service", "db", "upgrade"], check=False)


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Show each option's default, except where the help says it (default None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


def register(subparsers: Any, factory: AppFactory = create_app) -> None:
    """The `serve` sub-command; the benchmarks pass their own factory (benchmarks.serve)."""
    parser = subparsers.add_parser(
        "serve",
        help="run the service under gunicorn",
        description="Run the service under gunicorn (gthread workers). Settings: CDS_* "
        "environment variables (docs/configuration.md).",
        formatter_class=_Defaults,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8080, help="TCP port to listen on")
    parser.add_argument("--workers", type=_positive, default=2, help="worker processes")
    parser.add_argument("--threads", type=_positive, default=4, help="threads per worker")
    parser.add_argument(
        "--max-requests",
        type=_count,
        default=50_000,
        help="restart a worker after this many requests (0: never); it empties its memos",
    )
    parser.add_argument(
        "--worker-class",
        choices=sorted(WORKER_CLASSES),
        default="buffered",
        help="buffered: whole requests are read before a thread takes them (slow clients "
        "cannot hold threads); gthread: gunicorn's threads (only behind a buffering proxy)",
    )
    parser.add_argument(
        "--profile",
        choices=["production", "local"],
        default=None,
        help="settings profile (local: auth off, console on); default: CDS_PROFILE or production",
    )
    parser.add_argument(
        "--public-base-url",
        default=None,
        help="the URL clients call (sets CDS_PUBLIC_BASE_URL); default: CDS_PUBLIC_BASE_URL, "
        "or http://HOST:PORT in the local profile",
    )
    parser.set_defaults(func=functools.partial(_serve, factory=factory))
