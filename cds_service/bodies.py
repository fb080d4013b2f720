"""Reading request bodies safely: media type, size and nesting depth (hostile input)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Request

from cds_service.errors import CDSError, InvalidRequest


class UnsupportedMediaType(CDSError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(CDSError):
    status = 413
    code = "payload_too_large"


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


def max_depth_exceeded(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def read_json(request: Request, *, max_bytes: int, max_depth: int) -> Any:
    """Parse a JSON request body, or raise the domain error the edge maps to 400/413/415."""
    if not _is_json(request.mimetype):
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc.args[0] if exc.args else 'invalid'}") from None
    # A shallow body cannot be too deep: count brackets before walking it.
    if raw.count(b"{") + raw.count(b"[") > max_depth and max_depth_exceeded(data, max_depth):
        raise InvalidRequest(f"JSON nested deeper than {max_depth} levels")
    return data
