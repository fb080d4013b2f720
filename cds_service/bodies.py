"""Reading request bodies safely: media type, size and nesting depth (hostile input)."""

from __future__ import annotations

import re
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


_STRING = re.compile(rb'"[^"]*"')
_KEEP = b'"[]{}'
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_LEAF_PAIR = re.compile(rb"\{\}|\[\]")


def raw_depth_exceeded(raw: bytes, limit: int) -> bool:
    """Whether valid JSON bytes nest deeper than `limit`, at C speed (no walk of the tree).

    Escapes go first so only string delimiters remain as quotes; then strings, then all but
    brackets; each pass removes the innermost pairs, so `limit` passes empty a legal body.
    """
    text = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DROP)
    brackets = _STRING.sub(b"", text)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _LEAF_PAIR.sub(b"", brackets)
    return bool(brackets)


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
    # A shallow body cannot be too deep: count brackets before scanning it.
    if raw.count(b"{") + raw.count(b"[") > max_depth and raw_depth_exceeded(raw, max_depth):
        raise InvalidRequest(f"JSON nested deeper than {max_depth} levels")
    return data
