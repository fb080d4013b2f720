"""Security headers on every response, API JSON and the tester's console page alike."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

# JSON is never rendered: forbid everything.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The console page: own scripts, styles and calls only; no inline script, no framing.
HTML_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


def _is_static() -> bool:
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")


def _add_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    # A preflight's automatic answer is typed text/html but has no body to render.
    is_page = response.mimetype == "text/html" and request.method != "OPTIONS"
    csp = HTML_CSP if is_page else JSON_CSP
    headers.setdefault("Content-Security-Policy", csp)
    if not _is_static():
        # Cards and errors concern one patient: no shared or browser cache may keep them.
        headers["Cache-Control"] = "no-store"
    if str(current_app.config.get("PUBLIC_BASE_URL", "")).startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def install(app: Flask) -> None:
    app.after_request(_add_headers)
