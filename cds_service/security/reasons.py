"""A refused token's reason as one of a few classes (a metrics label: bounded, no values)."""

from __future__ import annotations

# (prefix of AuthFailure.reason, class); the first match wins, "other" when none does.
_CLASSES = (
    ("missing bearer token", "missing"),
    ("ExpiredSignatureError", "expired"),
    ("ImmatureSignatureError", "not_yet_valid"),
    ("InvalidAudienceError", "audience"),
    ("InvalidSignatureError", "signature"),
    ("key refused", "signature"),
    ("untrusted issuer", "untrusted_issuer"),
    ("jku ", "untrusted_issuer"),
    ("tenant must", "claims"),
    ("tenant ", "untrusted_issuer"),
    ("unknown kid", "unknown_key"),
    ("jti replayed", "replayed"),
    ("authorization header", "malformed"),
    ("malformed", "malformed"),
    ("algorithm ", "malformed"),
    ("typ ", "malformed"),
    ("critical header", "malformed"),
    ("missing kid", "malformed"),
    ("exp too far", "claims"),
    ("jti must", "claims"),
)
REASON_CLASSES = frozenset(name for _, name in _CLASSES) | {"claims", "other"}


def reason_class(reason: str) -> str:
    """`untrusted issuer 'x'` -> `untrusted_issuer`; PyJWT's other errors -> `claims`."""
    for prefix, name in _CLASSES:
        if reason.startswith(prefix):
            return name
    if reason.endswith("Error") or "Error:" in reason:
        return "claims"
    return "other"
