"""Lone UTF-16 surrogate escapes in JSON ("\\udcff"): found only after a strict decode failed.

JSON may spell a character as a surrogate pair of escapes; one half alone is no Unicode
character, so the strict decoders (msgspec, orjson) refuse the whole document. To tell which
member holds it, each lone escape is rewritten into a mark: plain string text, unique to this
process, that keeps the escape's four hex digits. The marked document decodes; a piece of it
(a member, a Bundle entry) holding the mark held a lone surrogate. Marked text is never read as
data: a marked resource becomes an UnreadableResource (fhir_mappings.lazy), a marked envelope
member a 400.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

_NONCE = secrets.token_hex(8)
# What replaces the `\u` of a lone escape, as JSON text and as decoded text (SUB, the nonce).
MARK = b"\\u001a" + _NONCE.encode() + b"-"
_MARK_TEXT = "\x1a" + _NONCE + "-"
_HIGH = rb"[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"[dD][c-fC-F][0-9a-fA-F]{2}"
# The `\u` of a high surrogate escape not followed by a low one, or of a low one not preceded
# by a high one. Run on text free of escaped backslashes (see mark_lone_surrogates), so every
# backslash left starts an escape.
_LONE = re.compile(
    rb"\\u(?=" + _HIGH + rb"(?!\\u" + _LOW + rb"))|(?<!\\u" + _HIGH + rb")\\u(?=" + _LOW + rb")"
)
_MARK_TEMPLATE = MARK.replace(b"\\", b"\\\\")  # re.sub reads backslashes in its template
_MARKED_TEXT = re.compile(re.escape(_MARK_TEXT) + "([0-9a-fA-F]{4})")
_MARKED_JSON = re.compile(re.escape(MARK) + rb"([0-9a-fA-F]{4})")


def mark_lone_surrogates(raw: bytes) -> bytes | None:
    """`raw` with each lone surrogate escape marked; None when it holds none."""
    if b"\\u" not in raw:
        return None
    # An escaped backslash is a pair; splitting on pairs, left to right as JSON reads them,
    # leaves only backslashes that start an escape.
    parts = raw.split(b"\\\\")
    found = 0
    for i, part in enumerate(parts):
        parts[i], count = _LONE.subn(_MARK_TEMPLATE, part)
        found += count
    return b"\\\\".join(parts) if found else None


def is_marked(raw: bytes | memoryview) -> bool:
    """Whether a piece of a marked document held a lone surrogate."""
    return MARK in bytes(raw)


def shown(text: str) -> str:
    """Decoded text of a marked document with each lone surrogate shown as its escape."""
    return _MARKED_TEXT.sub(lambda m: "\\u" + m.group(1).lower(), text)


def marked_escape(text: str) -> str | None:
    """The first lone escape a decoded string of a marked document held ("\\udcff"), or None."""
    if _MARK_TEXT not in text:
        return None
    found = _MARKED_TEXT.search(text)
    return "\\u" + found.group(1).lower() if found else None


def first_marked(value: Any, path: str) -> tuple[str, str] | None:
    """(path, escape) of the first marked string, member name or value, in decoded JSON."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            escape = marked_escape(node)
            if escape:
                return where, escape
        elif isinstance(node, dict):
            for key in node:
                escape = marked_escape(key)
                if escape:
                    return f"{where}.{shown(key)}", escape
            stack.extend((item, f"{where}.{key}") for key, item in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((node[i], f"{where}[{i}]") for i in reversed(range(len(node))))
    return None


def first_escape(marked: bytes) -> str | None:
    """The first lone escape a marked piece of JSON holds ("\\udcff"), or None."""
    found = _MARKED_JSON.search(marked)
    return "\\u" + found.group(1).decode().lower() if found else None


def unmarked(raw: bytes | memoryview) -> bytes:
    """A marked piece with each mark as U+FFFD, to read what can be read (never as data)."""
    return _MARKED_JSON.sub(rb"\\ufffd", bytes(raw))


def lone_surrogate_reason(escape: str) -> str:
    """Why a resource holding a lone surrogate cannot be used, for reports and cards."""
    return (
        f"the resource's JSON holds a lone UTF-16 surrogate ({escape}), which is not a "
        "character: it cannot be read"
    )
