"""`cds-service serve`: the app under gunicorn, a production WSGI server."""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from cds_service.app import create_app
from cds_service.config import load_settings
from cds_service.persistence import migrate
from cds_service.persistence.db import is_sqlite
from cds_service.persistence.store import open_engine

AppFactory = Callable[..., Flask]


class _Gunicorn(BaseApplication):
    """Embed gunicorn so `cds-service serve` needs no separate config file."""

    def __init__(self, options: dict[str, Any], profile: str | None, factory: AppFactory) -> None:
        self.options = options
        self.profile = profile
        self.factory = factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory({"PROFILE": self.profile} if self.profile else None)


def _serve(args: argparse.Namespace, factory: AppFactory = create_app) -> int:
    if args.profile:
        os.environ["CDS_PROFILE"] = args.profile
    _upgrade_sqlite_apart()
    # Build once in the parent so invalid settings or knowledge fail before forking.
    app = factory()
    base = args.public_base_url or f"http://{args.host}:{args.port}"
    print(f"CDS Hooks discovery: {base}/cds-services", flush=True)
    if app.config["CONSOLE"]:
        print(f"Tester's console: {base}/console/", flush=True)
    if args.workers > 1 and app.config["AUTH"] == "required" and not app.config["REDIS_URL"]:
        # Each worker would keep its own jti store and rate counters.
        print(
            "WARNING: several workers without CDS_REDIS_URL: JWT replay protection and rate "
            "limits are per worker; set CDS_REDIS_URL in production",
            file=sys.stderr,
            flush=True,
        )
    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": args.threads,
        "timeout": 30,
        "accesslog": None,
        "preload_app": False,
        # A worker that parsed a very large prefetch keeps that memory; recycling returns it.
        "max_requests": args.max_requests,
        "max_requests_jitter": max(args.max_requests // 10, 0),
    }
    _Gunicorn(options, args.profile, factory).run()
    return 0


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


def register(subparsers: Any, factory: AppFactory = create_app) -> None:
    """The `serve` sub-command; the benchmarks pass their own factory (benchmarks.serve)."""
    parser = subparsers.add_parser("serve", help="run the service under gunicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--max-requests",
        type=int,
        default=50_000,
        help="restart a worker after this many requests (0: never); it empties its memos",
    )
    parser.add_argument(
        "--profile",
        choices=["production", "local"],
        default=None,
        help="settings profile (local: auth off, console on)",
    )
    parser.add_argument("--public-base-url", default=None)
    parser.set_defaults(func=functools.partial(_serve, factory=factory))
