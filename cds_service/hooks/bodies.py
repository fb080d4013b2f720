"""Reading request bodies safely: media type, size and nesting depth (hostile input)."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec
import orjson
from flask import Request

from cds_service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from fhir_mappings.lazy import (
    SMALLEST_TYPED_ENTRY,
    lazy,
    lazy_marked,
    lazy_members,
    unreadable_entries,
)
from fhir_mappings.surrogates import first_marked, mark_lone_surrogates


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
    parens = raw.translate(_TO_PARENS, _DROP)
    # Brackets inside strings only add openers: this few cannot nest deeper than `limit`.
    if parens.count(b"(") <= limit:
        return False
    parens = parens.replace(b'""', b"")
    if b'"' in parens:
        parens = b"".join(parens.split(b'"')[::2])
    for done in range(limit):
        if not parens:
            return False
        # limit+1-done openers in a row, after `done` passes, are too deep: found at the first
        # such run, so 30 MB of "[" is refused in one scan, not `limit` passes.
        if b"(" * (limit + 1 - done) in parens:
            return True
        parens = parens.replace(b"()", b"")
    return bool(parens)


def _read_raw(request: Request, max_bytes: int) -> bytes:
    """The body's bytes: JSON media type (415) and size (413) checked first."""
    if not _is_json(request.mimetype):
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    environ = request.environ
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if request.content_length is not None:
        # Exactly what was declared: read(max_bytes + 1) would allocate max_bytes each call.
        raw = request.stream.read(request.content_length)
    elif chunked or environ.get("wsgi.input_terminated"):
        # Chunked: werkzeug's stream would stop silently at MAX_CONTENT_LENGTH, leaving a
        # truncated body that reads as malformed or too deep; read past it to say 413.
        raw = _read_until(environ["wsgi.input"], max_bytes + 1)
    else:
        raw = b""  # no length, not chunked: WSGI says there is no body
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    return raw


def _read_until(stream: Any, limit: int) -> bytes:
    """Up to `limit` bytes of a body of unknown length, in pieces (no limit-sized buffer)."""
    parts, size = [], 0
    while size < limit:
        part = stream.read(min(_PIECE, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


_PIECE = 256 * 1024


def _check_depth(raw: bytes, max_depth: int) -> None:
    if raw_depth_exceeded(raw, max_depth):
        raise InvalidRequest(f"JSON nested deeper than {max_depth} levels")


def _malformed(exc: Exception) -> InvalidRequest:
    return InvalidRequest(f"malformed JSON: {exc.args[0] if exc.args else 'invalid'}")


def read_json(request: Request, *, max_bytes: int, max_depth: int, raw: bytes | None = None) -> Any:
    """Parse a JSON request body, or raise the domain error the edge maps to 400/413/415."""
    raw = _read_raw(request, max_bytes) if raw is None else raw
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


class _HookMembers(_HookBody):
    """_HookBody read in one pass when `prefetch` is an object (its members kept as bytes)."""

    prefetch: dict[str, msgspec.Raw] | msgspec.UnsetType | None = msgspec.UNSET  # type: ignore[assignment]


_HOOK_MEMBERS = msgspec.json.Decoder(_HookMembers)


def read_hook_json(
    request: Request, *, max_bytes: int, max_depth: int, max_entries: int | None = None
) -> Any:
    """A hook call's body as read_json would give it, with each prefetch value lazy.

    Prefetch values are fhir_mappings.lazy.LazyResource mappings over the body's bytes: the
    bulk of a call is decoded resource by resource when mapped, or not at all. In a body too
    short to hold more than `max_entries` resources of a search, each search Bundle is read
    typed at once (lazy.lazy): the edge never decodes more before the bounds are checked.
    """
    raw = _read_raw(request, max_bytes)
    if max_entries is not None and len(raw) > SMALLEST_TYPED_ENTRY * max_entries:
        max_entries = None
    # Parsers stop at the first byte past their own depth limit: parse first, then count.
    try:
        members = _HOOK_MEMBERS.decode(raw)
    except msgspec.ValidationError:  # not an object, or a prefetch of another JSON type
        members = None
    except (msgspec.DecodeError, RecursionError) as exc:
        return _with_lone_surrogates(raw, exc, max_depth)
    if members is not None:
        _check_depth(raw, max_depth)
        data = _members(members)
        if members.prefetch is not msgspec.UNSET:
            found = members.prefetch
            data["prefetch"] = (
                None if found is None else {k: lazy(v, max_entries) for k, v in found.items()}
            )
        return data
    try:
        body = _HOOK_BODY.decode(raw)
    except msgspec.ValidationError:  # valid JSON, not an object: the caller says why
        return read_json(request, raw=raw, max_bytes=max_bytes, max_depth=max_depth)
    _check_depth(raw, max_depth)
    data = _members(body)
    if len(body.prefetch):
        data["prefetch"] = lazy_members(body.prefetch, partial(lazy, max_entries=max_entries))
    return data


def _members(body: _HookBody | _HookMembers) -> dict[str, Any]:
    return {
        name: value
        for name in _HookBody.__struct_fields__
        if name != "prefetch" and (value := getattr(body, name)) is not msgspec.UNSET
    }


def _with_lone_surrogates(raw: bytes, exc: Exception, max_depth: int) -> dict[str, Any]:
    """A body the strict decode refused, read again if a lone surrogate escape was the cause.

    Invalid is not absent, and nothing accepted is lost: a resource holding one (in prefetch,
    in context.draftOrders) is unreadable and reported, the rest of the call stands; anywhere
    else (hook, context ids, a prefetch key) it is a 400 naming the member. Only this failure
    path looks for them: a valid body pays nothing.
    """
    marked = mark_lone_surrogates(raw)
    if marked is None:
        raise _malformed(exc) from None
    try:
        body = _HOOK_BODY.decode(marked)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        raise _malformed(exc) from None  # malformed besides: the first problem, as found
    _check_depth(raw, max_depth)
    data = _members(body)
    context = data.get("context")
    if isinstance(context, dict) and isinstance(context.get("draftOrders"), dict):
        data["context"] = {**context, "draftOrders": unreadable_entries(context["draftOrders"])}
    prefetch = lazy_members(body.prefetch, lazy_marked) if len(body.prefetch) else None
    keys = dict.fromkeys(prefetch) if isinstance(prefetch, dict) else prefetch
    for name, value in (*data.items(), ("prefetch", keys)):
        found = first_marked(value, name)
        if found:
            where, escape = found
            problem = f"holds a lone UTF-16 surrogate ({escape}), which is not a character"
            raise InvalidRequest(f"{where} {problem}", details={where: [problem]})
    if prefetch is not None:
        data["prefetch"] = prefetch
    return data


def read_json_bytes(raw: bytes) -> Any:
    """orjson.loads, with malformed JSON as the 400 the edge expects."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _malformed(exc) from None
