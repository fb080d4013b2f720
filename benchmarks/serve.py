"""`python -m benchmarks.serve [serve options]`: `cds-service serve` with the floor endpoint.

The load benchmark runs this, so the floor and the hook share one server and its middleware.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks.floor import create_bench_app
from cds_service import serve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    subparsers = parser.add_subparsers(dest="command", required=True)
    serve.register(subparsers, factory=create_bench_app)
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
