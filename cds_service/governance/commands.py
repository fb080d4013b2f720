"""`cds-service capture deidentify` and `cds-service knowledge diff`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cds_service.errors import CDSError, ConfigError


def _cases(paths: list[str]) -> tuple[list[Path], dict[Path, str]]:
    from cds_service.fhir.scenarios import scenario_dirs

    found: list[Path] = []
    labels: dict[Path, str] = {}
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise ConfigError(f"{raw}: no such file or directory")
        for case in scenario_dirs(root):
            found.append(case)
            labels[case] = str(case)
    if not found:
        raise ConfigError("no scenario directories (with request.json) under " + ", ".join(paths))
    return found, labels


def _diff(args: argparse.Namespace) -> int:
    from cds_service.governance.knowledge_diff import diff_knowledge, format_report
    from fhir_mappings import load_terminology

    try:
        load_terminology()
        cases, labels = _cases(args.paths)
        policy = args.site_policy
        if policy is None:
            policy = os.environ.get("CDS_SITE_POLICY_FILE") or None
        report = diff_knowledge(args.old, args.new, cases, policy or None, labels)
    except CDSError as exc:
        print(f"knowledge diff: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(format_report(report))
    return 1 if report.changed else 0


def _deidentify(args: argparse.Namespace) -> int:
    from cds_service.governance.deidentify import deidentify_dir

    source = Path(args.dir)
    target = Path(args.out) if args.out else source.with_name(source.name + "-deidentified")
    if not source.is_dir():
        print(f"capture deidentify: {source} is not a directory", file=sys.stderr)
        return 2
    if target.exists() and any(target.iterdir()):
        print(f"capture deidentify: {target} exists and is not empty", file=sys.stderr)
        return 2
    try:
        written = deidentify_dir(source, target)
    except (OSError, ValueError) as exc:
        print(f"capture deidentify: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if not written:
        print(f"capture deidentify: no cases (request.json) under {source}", file=sys.stderr)
        return 2
    print(f"de-identified {len(written)} case(s) into {target}")
    return 0


def register(subparsers: Any) -> None:
    capture = subparsers.add_parser("capture", help="captured hook calls (CDS_CAPTURE_DIR)")
    capture_sub = capture.add_subparsers(dest="capture_command", required=True)
    deid = capture_sub.add_parser(
        "deidentify",
        help="copy captures with dates shifted per patient and ids/names pseudonymised",
    )
    deid.add_argument("dir", help="a capture directory, or a directory of them")
    deid.add_argument("--out", default=None, help="where to write (default: DIR-deidentified)")
    deid.set_defaults(func=_deidentify)

    knowledge = subparsers.add_parser("knowledge", help="review guideline knowledge versions")
    knowledge_sub = knowledge.add_subparsers(dest="knowledge_command", required=True)
    diff = knowledge_sub.add_parser(
        "diff",
        help="run two knowledge versions over fixtures/captures and list the cards that change "
        "(exit 1 when any did)",
    )
    diff.add_argument("--from", dest="old", required=True, metavar="OLD.yaml")
    diff.add_argument("--to", dest="new", required=True, metavar="NEW.yaml")
    diff.add_argument(
        "--site-policy",
        default=None,
        metavar="FILE",
        help="site-policy file applied to both (default: CDS_SITE_POLICY_FILE)",
    )
    diff.add_argument("--json", action="store_true", help="JSON instead of text")
    diff.add_argument("paths", nargs="+", metavar="PATH", help="scenario dirs or dirs of them")
    diff.set_defaults(func=_diff)
