"""The `cds-service` command: one sub-command per module in COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module has register(subparsers) adding its sub-command(s) with set_defaults(func=...).
COMMAND_MODULES = [
    "cds_service.serve",
    "cds_service.fhir.server_cli",
    "cds_service.replay",
    "cds_service.persistence.commands",
    "cds_service.governance.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    sys.stdout.flush()
    return int(result or 0)
