"""Reading request bodies safely: media type, size and nesting depth (hostile input)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from flask import Request

from cds_service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from fhir_mappings.lazy import lazy_members


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


# Opening brackets become "(", closing ones ")"; quotes stay; everything else is dropped.
_TO_PARENS = bytes.maketrans(b"{[}]", b"(())")
_DROP = bytes(b for b in range(256) if b not in b'"[]{}')


def raw_depth_exceeded(raw: bytes, limit: int) -> bool:
    """Whether valid JSON bytes nest deeper than `limit`, at C speed (no walk of the tree).

    Escaped backslashes and quotes go first, so the quotes left delimit strings; then all but
    quotes and brackets; then string contents (adjacent quotes first: removing two neighbours
    never changes what is inside a string). Each replace pass removes the innermost pairs
    (replace does not rescan what it joins), so `limit` passes empty a legal body.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    parens = raw.translate(_TO_PARENS, _DROP).replace(b'""', b"")
    if b'"' in parens:
        parens = b"".join(parens.split(b'"')[::2])
    for _ in range(limit):
        if not parens:
            return False
        parens = parens.replace(b"()", b"")
    return bool(parens)


def _read_raw(request: Request, max_bytes: int) -> bytes:
    """The body's bytes: JSON media type (415) and size (413) checked first."""
    if not _is_json(request.mimetype):
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    return raw


def _check_depth(raw: bytes, max_depth: int) -> None:
    # A shallow body cannot be too deep: count brackets before scanning it.
    if raw.count(b"{") + raw.count(b"[") > max_depth and raw_depth_exceeded(raw, max_depth):
        raise InvalidRequest(f"JSON nested deeper than {max_depth} levels")


def _malformed(exc: Exception) -> InvalidRequest:
    return InvalidRequest(f"malformed JSON: {exc.args[0] if exc.args else 'invalid'}")


def read_json(request: Request, *, max_bytes: int, max_depth: int) -> Any:
    """Parse a JSON request body, or raise the domain error the edge maps to 400/413/415."""
    raw = _read_raw(request, max_bytes)
    data = read_json_bytes(raw)
    _check_depth(raw, max_depth)
    return data


class _HookBody(msgspec.Struct):
    """The members of a CDS Hooks request (spec 'HTTP Request'); others are ignored."""

    hook: Any = msgspec.UNSET
    hookInstance: Any = msgspec.UNSET
    fhirServer: Any = msgspec.UNSET
    fhirAuthorization: Any = msgspec.UNSET
    context: Any = msgspec.UNSET
    extension: Any = msgspec.UNSET
    prefetch: msgspec.Raw = msgspec.Raw()


_HOOK_BODY = msgspec.json.Decoder(_HookBody)


def read_hook_json(request: Request, *, max_bytes: int, max_depth: int) -> Any:
    """A hook call's body as read_json would give it, with each prefetch value lazy.

    Prefetch values are fhir_mappings.lazy.LazyResource mappings over the body's bytes: the
    bulk of a call is decoded resource by resource when mapped, or not at all (issue 8).
    """
    raw = _read_raw(request, max_bytes)
    _check_depth(raw, max_depth)
    try:
        body = _HOOK_BODY.decode(raw)
    except msgspec.ValidationError:  # valid JSON, not an object: the caller says why
        return read_json_bytes(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _malformed(exc) from None
    data = {
        name: value
        for name in _HookBody.__struct_fields__
        if name != "prefetch" and (value := getattr(body, name)) is not msgspec.UNSET
    }
    if len(body.prefetch):
        data["prefetch"] = lazy_members(body.prefetch)
    return data


def read_json_bytes(raw: bytes) -> Any:
    """orjson.loads, with malformed JSON as the 400 the edge expects."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _malformed(exc) from None
