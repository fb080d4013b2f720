"""The `cds-service` command: one sub-command per module in COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cds_service.config import load_settings
from cds_service.errors import ConfigError
from cds_service.ops.logs import configure_logging
from cds_service.version import __version__

# Each module has register(subparsers) adding its sub-command(s) with set_defaults(func=...).
COMMAND_MODULES = [
    "cds_service.serve",
    "cds_service.fhir.server_cli",
    "cds_service.replay",
    "cds_service.persistence.commands",
    "cds_service.governance.commands",
]
# Exit status of a configuration or usage error (as argparse uses for bad arguments).
USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cds-service {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _fail(message: str) -> int:
    print(f"cds-service: error: {message}", file=sys.stderr, flush=True)
    return USAGE_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; a configuration error is one line on stderr and exit status 2."""
    from cds_service.serve import UsageError

    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings["LOG_LEVEL"], settings["LOG_FORMAT"], force=True)
        result = args.func(args)
    except ConfigError as exc:
        return _fail(exc.message)
    except UsageError as exc:
        return _fail(str(exc))
    sys.stdout.flush()
    return int(result or 0)
