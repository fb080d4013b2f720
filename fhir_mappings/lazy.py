"""FHIR JSON kept as bytes until read: a prefetch Bundle's resources decode one at a time.

A 10,000-resource prefetch decoded at once is ~60 MB of Python objects; kept as the request's
bytes, each resource is decoded when it is mapped and freed after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar, cast

import msgspec
import orjson

from fhir_mappings.shapes import (
    ConditionResource,
    MedicationRequestResource,
    ObservationResource,
    decoder,
)
from fhir_mappings.surrogates import (
    first_escape,
    first_marked,
    is_marked,
    lone_surrogate_reason,
    unmarked,
)

T = TypeVar("T")
_ABSENT = msgspec.Raw()


class _Top(msgspec.Struct):
    """The members read without decoding a resource (its other members are skipped)."""

    resourceType: Any = msgspec.UNSET
    id: Any = msgspec.UNSET
    link: msgspec.Raw = _ABSENT
    entry: msgspec.Raw = _ABSENT


class _Entry(msgspec.Struct):
    fullUrl: msgspec.Raw = _ABSENT
    resource: msgspec.Raw = _ABSENT


class _EntryTop(msgspec.Struct):
    resource: _Top | None = None


_TOP = msgspec.json.Decoder(_Top)
_ENTRIES = msgspec.json.Decoder(list[_Entry])
_ENTRY_TOPS = msgspec.json.Decoder(list[_EntryTop])
_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])
# The searches read in one pass (typed_entries), in the order fhir_mappings.state tries them.
SEARCHES: tuple[type[Any], ...] = (
    ObservationResource,
    MedicationRequestResource,
    ConditionResource,
)
# The least bytes an entry of a one-pass search takes: {"resource":{"resourceType":"Condition"}}
# and a comma (each search's resourceType is required; tests/test_security_hardening.py).
SMALLEST_TYPED_ENTRY = 42
_NO_SEARCH = (None, None)
_UNREAD = msgspec.Raw(b"[]")  # `entry` of a search read typed: its bytes are found if needed
_LIGHT = frozenset({"resourceType", "id", "link"})
_LIGHT_VALUES = frozenset({"resourceType", "id"})


def _load(raw: msgspec.Raw) -> Any:
    return orjson.loads(memoryview(raw))


def lazy(raw: msgspec.Raw, max_entries: int | None = None) -> Any:
    """A JSON object as a LazyResource; any other JSON value decoded at once.

    With `max_entries`, a search Bundle too short to hold more entries is decoded typed in
    one pass here (its light members too): the mapping takes the entries from it.
    """
    if len(raw) and memoryview(raw)[:1] == b"{":
        searched = max_entries is not None and len(raw) <= SMALLEST_TYPED_ENTRY * max_entries
        found = _first_search(raw) if searched else None
        if found is not None:
            typed, bundle = found
            top = _Top(resourceType="Bundle", id=bundle.id, link=bundle.link, entry=_UNREAD)
            resource = LazyResource(raw, top)
            resource._typed = typed
            return resource
        try:
            resource = LazyResource(raw, _TOP.decode(raw))
        except msgspec.ValidationError:
            pass  # light members of unexpected types: decode the object whole, below
        else:
            if searched:
                resource._typed = _NO_SEARCH
            return resource
    return _load(raw)


_SEARCH_BUNDLES: dict[Any, Any] = {}


def _search_bundle(shape: Any) -> Any:
    """A Bundle of `shape` entries with its light members: one decoder per search shape."""
    found = _SEARCH_BUNDLES.get(shape)
    if found is None:
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
            ("resourceType", Literal["Bundle"]),
            ("entry", _entry_list(shape)),
            ("id", Any, msgspec.UNSET),
            ("link", msgspec.Raw, _ABSENT),
        ]
        found = _SEARCH_BUNDLES[shape] = msgspec.defstruct(f"{shape.__name__}Search", fields)
    return found


def _first_search(raw: msgspec.Raw) -> tuple[tuple[Any, Any], Any] | None:
    """((shape, its entries' pairs), the Bundle) for the first search that fits, read in one
    pass with its light members; None when none does."""
    for shape in SEARCHES:
        try:
            bundle = decoder(_search_bundle(shape)).decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
        return (shape, _pairs(bundle.entry)), bundle
    return None


def _pairs(entries: Any) -> list[tuple[Any, Any]]:
    """Typed entries as the (fullUrl, resource) pairs typed_entries gives."""
    return [(e.fullUrl, e.resource) for e in entries]


def lazy_members(raw: msgspec.Raw, read: Callable[[msgspec.Raw], Any] = lazy) -> Any:
    """A JSON object's members, each value read by `read`; any other JSON value decoded at once."""
    try:
        members = _MEMBERS.decode(raw)
    except msgspec.ValidationError:
        return _load(raw)
    return {key: read(value) for key, value in members.items()}


class LazyResource(Mapping[str, Any]):
    """A JSON object read from a request body: a Mapping equal to its decoded value.

    resourceType, id and link are read from a light decode; any other member decodes the
    whole object (kept). `load()` decodes a fresh copy that is not kept, and `entries()`
    gives a Bundle's entries with each resource lazy in turn.
    """

    __slots__ = ("_raw", "_top", "_typed", "_value")

    def __init__(self, raw: msgspec.Raw, top: _Top) -> None:
        self._raw = raw
        self._top = top
        self._value: dict[str, Any] | None = None
        # A one-pass search decoded early (lazy() or more_entries_than), until typed_entries
        # takes it: (shape, its entries), or _NO_SEARCH when no search shape fits.
        self._typed: tuple[Any, Any] | None = None

    def load(self) -> dict[str, Any]:
        """The decoded object (not kept: a Bundle's resource is freed once mapped)."""
        if self._value is not None:
            return self._value
        value: dict[str, Any] = _load(self._raw)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping.get, without raising and catching KeyError for the light members."""
        if key in _LIGHT_VALUES and self._value is None:
            value = getattr(self._top, key)
            return default if value is msgspec.UNSET else value
        try:
            return self[key]
        except KeyError:
            return default

    def _full(self) -> dict[str, Any]:
        if self._value is None:
            self._value = self.load()
        return self._value

    def __getitem__(self, key: str) -> Any:
        if key in _LIGHT and self._value is None:
            if key == "link":
                if not len(self._top.link):
                    raise KeyError(key)
                return _load(self._top.link)
            value = getattr(self._top, key)
            if value is msgspec.UNSET:
                raise KeyError(key)
            return value
        return self._full()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._full())

    def __len__(self) -> int:
        return len(self._full())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyResource):
            other = other._full()
        return self._full() == other

    __hash__ = None  # type: ignore[assignment]

    @property
    def raw(self) -> msgspec.Raw:
        """The object's JSON bytes, as sent."""
        return self._raw

    def _entry(self) -> msgspec.Raw:
        """`entry` as bytes: a search decoded typed by lazy() finds them only when asked."""
        if self._top.entry is _UNREAD:
            self._top = _TOP.decode(self._raw)
        return self._top.entry

    @property
    def resource_type(self) -> Any:
        value = self._top.resourceType
        return None if value is msgspec.UNSET else value

    def entries(self) -> list[tuple[Any, Any]] | None:
        """A Bundle's (fullUrl, lazy resource or None) pairs; None if `entry` is not a list."""
        decoded = self._entries()
        if not decoded:
            return None if decoded is None else []
        try:  # every resource's light members in one pass, not one decode call each
            tops = _ENTRY_TOPS.decode(self._entry())
        except (msgspec.ValidationError, msgspec.DecodeError):
            tops = None  # some entry's resource is not an object: one by one below
        if tops is not None:
            return [
                (
                    _load(e.fullUrl) if len(e.fullUrl) else None,
                    LazyResource(e.resource, t.resource) if t.resource is not None else None,
                )
                for e, t in zip(decoded, tops, strict=True)
            ]
        return [
            (
                _load(e.fullUrl) if len(e.fullUrl) else None,
                lazy(e.resource) if len(e.resource) else None,
            )
            for e in decoded
        ]

    def _search(self) -> list[tuple[Any, Any]] | None:
        """The entries of the first one-pass search that fits, kept for typed_entries."""
        found = _first_search(self._raw)
        self._typed = _NO_SEARCH if found is None else found[0]
        return self._typed[1]

    def observations(self) -> list[tuple[Any, ObservationResource]] | None:
        """A search of Observations in one pass (typed_entries), the common case."""
        return typed_entries(self, ObservationResource)

    def _entries(self) -> list[_Entry] | None:
        entry = self._entry()
        if not len(entry):
            return []
        try:
            return _ENTRIES.decode(entry)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None  # entries of odd shapes: read them from the decoded object

    def more_entries_than(self, limit: int) -> bool:
        """Whether `entry` is a list of more than `limit` items, without decoding them."""
        if self._typed is not None and self._typed is not _NO_SEARCH:
            return len(self._typed[1]) > limit  # read typed already: its length is the count
        entry = self._entry()
        size = len(entry)
        # n items take at least 2n + 1 bytes ("[1,2]"): most Bundles need no scan at all.
        if (size - 1) // 2 <= limit:
            return False
        # A search this size read in one pass cannot hold more than `limit` resources, and the
        # mapping reads it that way anyway: its length is the count, without another scan
        # (unless the edge found already that no search fits).
        if size <= SMALLEST_TYPED_ENTRY * limit and self._typed is None:
            found = self._search()
            if found is not None:
                return len(found) > limit
        try:
            return len(msgspec.json.decode(entry, type=list[msgspec.Raw])) > limit
        except (msgspec.ValidationError, msgspec.DecodeError):
            return False


_ENTRY_LISTS: dict[Any, Any] = {}


def _entry_list(shape: Any) -> Any:
    """list[an entry holding a `shape`], the type typed_entries decodes: made once per shape,
    as a new Struct type would also need a new decoder."""
    found = _ENTRY_LISTS.get(shape)
    if found is None:
        entry = msgspec.defstruct(
            f"{shape.__name__}Entry", [("resource", shape), ("fullUrl", Any, None)]
        )
        found = _ENTRY_LISTS[shape] = list[entry]  # type: ignore[valid-type]
    return found


def typed_entries(bundle: LazyResource, shape: type[T]) -> list[tuple[Any, T]] | None:
    """A Bundle's (fullUrl, resource) pairs when every entry holds a valid `shape`.

    One pass over the entries' bytes, typed and validated as fhir_mappings.shapes says (the
    common case: a search of one resource type); None for anything else (read entry by
    entry instead, where each resource's problem is reported on its own).
    """
    kept = bundle._typed
    if kept is not None and shape in SEARCHES:
        if kept[0] is not shape:
            return None  # another search fits, or none does: all were tried already
        bundle._typed = None  # handed over once: the mapping frees what it has read
        return cast("list[tuple[Any, T]]", kept[1])
    if bundle.resource_type != "Bundle" or not len(entry := bundle._entry()):
        return None
    try:
        decoded = decoder(_entry_list(shape)).decode(entry)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return _pairs(decoded)


class UnreadableResource(Mapping[str, Any]):
    """A resource whose JSON cannot be read as data (a lone surrogate: fhir_mappings.surrogates).

    Never mapped, reported as unusable (invalid is not absent). Its only members are its
    resourceType and id, when they are readable themselves, to name it; `lenient()` reads the
    rest with U+FFFD in place of each lone surrogate, only to say what the record seems to be.
    """

    __slots__ = ("_lenient", "_light", "reason")

    def __init__(self, marked: bytes | memoryview, around: bytes | memoryview = b"") -> None:
        """From a marked piece; `around`: where else the lone surrogate may be (its entry)."""
        data = bytes(marked)
        self._lenient = unmarked(data)
        try:
            top = _TOP.decode(data)
            light = {"resourceType": top.resourceType, "id": top.id}
        except (msgspec.ValidationError, msgspec.DecodeError):
            light = {}
        self._light = {
            k: v for k, v in light.items() if v is not msgspec.UNSET and not first_marked(v, k)
        }
        escape = first_escape(data) or first_escape(bytes(around)) or "\\u????"
        self.reason = lone_surrogate_reason(escape)

    def lenient(self) -> Any:
        """The resource read leniently (None when even that fails); never to be used as data."""
        try:
            return orjson.loads(self._lenient)
        except orjson.JSONDecodeError:
            return None

    def __getitem__(self, key: str) -> Any:
        return self._light[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._light)

    def __len__(self) -> int:
        return len(self._light)


def lazy_marked(raw: msgspec.Raw) -> Any:
    """lazy() on a piece of a marked document: what holds a lone surrogate is unreadable.

    A Bundle keeps its other entries (decoded skeleton, lazy resources): one unreadable
    resource costs that resource only. Anything else holding one is unreadable whole.
    """
    if not is_marked(raw):
        return lazy(raw)
    try:
        members = _MEMBERS.decode(raw)
        top = _TOP.decode(raw)
        outside = [v for k, v in members.items() if k != "entry" and is_marked(v)]
        if outside or top.resourceType != "Bundle" or not len(top.entry):
            return UnreadableResource(raw)
        bundle: dict[str, Any] = {k: _load(v) for k, v in members.items() if k != "entry"}
        bundle["entry"] = [_marked_entry(e) for e in _ENTRIES.decode(top.entry)]
    except (msgspec.ValidationError, msgspec.DecodeError, orjson.JSONDecodeError):
        return UnreadableResource(raw)  # not a Bundle of the usual shape: unreadable whole
    return bundle


def _marked_entry(entry: _Entry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if len(entry.fullUrl) and not is_marked(entry.fullUrl):
        out["fullUrl"] = _load(entry.fullUrl)
    if len(entry.resource):
        bad = is_marked(entry.resource) or is_marked(entry.fullUrl)
        resource = entry.resource
        out["resource"] = UnreadableResource(resource, entry.fullUrl) if bad else lazy(resource)
    return out


def unreadable_entries(bundle: dict[str, Any]) -> dict[str, Any]:
    """A decoded Bundle of a marked document with each marked entry's resource unreadable."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return bundle
    fixed = []
    for entry in entries:
        if isinstance(entry, dict) and first_marked(entry, ""):
            resource = orjson.dumps(entry.get("resource"))
            url = entry.get("fullUrl")
            entry = {
                **({"fullUrl": url} if not first_marked(url, "") else {}),
                "resource": UnreadableResource(resource, orjson.dumps(entry)),
            }
        fixed.append(entry)
    return {**bundle, "entry": fixed}


def piece(digest: Any, data: bytes | memoryview) -> None:
    """Length-prefixed, so that no two sequences of pieces hash the same bytes."""
    digest.update(b"%d:" % len(data))
    digest.update(data)
