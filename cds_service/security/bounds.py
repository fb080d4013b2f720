"""Hostile input beyond size and depth: bounded prefetch and draftOrders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.errors import PayloadTooLarge
from fhir_mappings.lazy import LazyResource


def _more_entries_than(value: Any, limit: int) -> bool:
    if isinstance(value, LazyResource):
        return value.more_entries_than(limit)
    return (
        isinstance(value, dict)
        and isinstance(value.get("entry"), list)
        and len(value["entry"]) > limit
    )


def check_hook_body(body: Any, config: Mapping[str, Any]) -> None:
    """Refuse (413) prefetch with too many keys or bundles, draftOrders or selections too large."""
    if not isinstance(body, dict):
        return
    max_entries = int(config["MAX_BUNDLE_ENTRIES"])
    prefetch = body.get("prefetch")
    if isinstance(prefetch, dict):
        if len(prefetch) > int(config["MAX_PREFETCH_KEYS"]):
            raise PayloadTooLarge(f"prefetch has more than {config['MAX_PREFETCH_KEYS']} keys")
        for key, value in prefetch.items():
            if _more_entries_than(value, max_entries):
                raise PayloadTooLarge(
                    f"prefetch {str(key)[:40]!r} has more than {max_entries} entries"
                )
    context = body.get("context")
    if not isinstance(context, dict):
        return
    max_orders = int(config["MAX_DRAFT_ORDERS"])
    if _more_entries_than(context.get("draftOrders"), max_orders):
        raise PayloadTooLarge(f"draftOrders has more than {max_orders} entries")
    selections = context.get("selections")
    if isinstance(selections, list) and len(selections) > max_orders:
        raise PayloadTooLarge(f"selections has more than {max_orders} entries")
