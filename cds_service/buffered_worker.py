"""A gunicorn worker that runs waitress: whole requests are buffered before a thread sees them.

gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives; a
client sending one byte a second then holds that thread for minutes. waitress reads
headers and bodies in its event loop and dispatches only complete requests, so hundreds of
slow connections cost buffers, not threads. gunicorn still forks, supervises and recycles the
workers. A partial request older than CDS_REQUEST_READ_SECONDS is closed; oversized headers and
bodies get the service's JSON error shape (431, 413), not waitress's text page.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from gunicorn.workers.base import Worker
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

from cds_service import memory

# Bodies up to this size stay in memory while they arrive; larger ones spool to a temp file.
_INBUF_OVERFLOW = 2 * 1024 * 1024
_LOOP_TIMEOUT = 1.0
_SWEEP_SECONDS = 0.5
# A connection accepted this recently with nothing read yet is a request on its way.
_FRESH_SECONDS = 5.0
# A body at least this large leaves enough heap behind to be worth trimming afterwards.
_LARGE_BODY = 1024 * 1024


# The codes the app itself uses for the same statuses (cds_service.hooks.bodies, errors).
_CODES = {400: "invalid_request", 413: "payload_too_large"}


class JsonErrorTask(ErrorTask):
    """waitress's own errors (400, 413, 431...) in the one JSON error shape."""

    def execute(self) -> None:
        error = self.request.error
        code = _CODES.get(error.code) or error.reason.lower().replace(" ", "_")
        body = orjson.dumps(
            {"error": {"status": error.code, "code": code, "message": str(error.body)}}
        )
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def close_slow_requests(server: BaseWSGIServer, now: float, read_seconds: float) -> int:
    """Close channels whose current request has been arriving for more than `read_seconds`."""
    closed = 0
    for channel in list(server.active_channels.values()):
        partial = channel.request
        if partial is None:
            channel.cds_partial = None
            continue
        seen = getattr(channel, "cds_partial", None)
        if seen is None or seen[0] is not partial:
            channel.cds_partial = (partial, now)
        elif now - seen[1] > read_seconds and not channel.requests:
            channel.will_close = True
            channel.cds_partial = None
            closed += 1
    return closed


def in_progress(channel: Any, now: float) -> bool:
    """Whether a draining worker must still serve this connection rather than close it.

    A request still arriving (a large body) is finished too, not reset; so is a connection
    accepted just before the drain whose first bytes have not been read yet: closing it would
    reset a client that is sending its request (seen with a 30 MB body right after a recycle).
    """
    if channel.requests or channel.request is not None or channel.total_outbufs_len:
        return True
    untouched = channel.last_activity == channel.creation_time
    return untouched and now - channel.creation_time < _FRESH_SECONDS


class BufferedWorker(Worker):
    """gunicorn worker class `cds_service.buffered_worker.BufferedWorker` (waitress inside)."""

    alive: bool  # gunicorn's Worker: False once the worker should stop
    large_body_at = 0.0  # when the last large body was answered (0: none since the last trim)

    def _counting(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        counter = itertools.count(1)
        limit = int(self.max_requests or 0)

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if limit and next(counter) >= limit and self.alive:
                self.log.info("worker %s: %d requests served, recycling", os.getpid(), limit)
                self.alive = False
            try:
                return app(environ, start_response)
            finally:
                length = environ.get("CONTENT_LENGTH") or ""
                if length.isdigit() and int(length) >= _LARGE_BODY:
                    self.large_body_at = time.monotonic()

        return counted

    def _after_large_body(self, max_rss_mib: float) -> None:
        """Once a large request is done: trim the heap; recycle if memory stays too high."""
        if not self.large_body_at or time.monotonic() - self.large_body_at < 0.2:
            return
        self.large_body_at = 0.0
        memory.trim()
        rss = memory.rss_mib()
        if max_rss_mib and rss > max_rss_mib and self.alive:
            self.log.info(
                "worker %s: %.0f MiB after a large request (CDS_WORKER_MAX_RSS_MIB %.0f): "
                "recycling",
                os.getpid(),
                rss,
                max_rss_mib,
            )
            self.alive = False

    def run(self) -> None:
        config = self.wsgi.config  # the Flask app's validated settings
        read_seconds = float(config["REQUEST_READ_SECONDS"])
        socket_map: dict[int, Any] = {}
        server = create_server(
            self._counting(self.wsgi),
            map=socket_map,
            sockets=[listener.sock for listener in self.sockets],
            threads=self.cfg.threads,
            connection_limit=int(config["MAX_CONNECTIONS"]),
            channel_timeout=int(config["IDLE_CONNECTION_SECONDS"]),
            max_request_body_size=int(config["MAX_REQUEST_BYTES"]),
            max_request_header_size=int(config["MAX_HEADER_BYTES"]),
            inbuf_overflow=_INBUF_OVERFLOW,
            cleanup_interval=1,
            asyncore_use_poll=True,
            ident="cds-service",
            expose_tracebacks=False,
        )
        servers = [server] if isinstance(server, BaseWSGIServer) else server.map.values()
        for each in servers:
            if isinstance(each, BaseWSGIServer):
                each.channel_class = JsonErrorChannel
        self.max_rss_mib = float(config["WORKER_MAX_RSS_MIB"])
        self._loop(socket_map, [s for s in servers if isinstance(s, BaseWSGIServer)], read_seconds)

    def _loop(
        self, socket_map: dict[int, Any], servers: list[BaseWSGIServer], read_seconds: float
    ) -> None:
        parent = self.ppid
        next_sweep = 0.0
        while self.alive:
            wasyncore.loop(timeout=_LOOP_TIMEOUT, map=socket_map, use_poll=True, count=1)
            now = time.time()
            if now < next_sweep:
                continue
            next_sweep = now + _SWEEP_SECONDS
            self.notify()
            for server in servers:
                close_slow_requests(server, now, read_seconds)
            self._after_large_body(self.max_rss_mib)
            if os.getppid() != parent:
                self.log.info("parent changed, shutting down: %s", self)
                break
        self._drain(socket_map, servers)

    def _drain(self, socket_map: dict[int, Any], servers: list[BaseWSGIServer]) -> None:
        """Stop accepting; let requests in progress finish within the graceful timeout."""
        for server in servers:
            server.accepting = False
            server.del_channel()  # the arbiter owns the listening socket: not closed here
        end = time.monotonic() + float(self.cfg.graceful_timeout)
        while time.monotonic() < end:
            now = time.time()
            busy = [
                channel
                for server in servers
                for channel in server.active_channels.values()
                if in_progress(channel, now)
            ]
            if not busy:
                break
            self.notify()
            wasyncore.loop(timeout=0.2, map=socket_map, use_poll=True, count=1)
        for server in servers:
            server.task_dispatcher.shutdown(timeout=1)
