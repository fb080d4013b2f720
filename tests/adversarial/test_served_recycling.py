"""The buffered worker keeps gunicorn's promises: --max-requests recycling, graceful stop."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.adversarial.support import request, serve, wait_until


def test_workers_are_recycled_after_max_requests_without_a_failed_call(tmp_path: Path) -> None:
    with serve(tmp_path, {"CDS_AUTH": "disabled"}, workers=1, args=("--max-requests", "5")) as s:
        first = s.workers()
        seen = set(first)
        for _ in range(40):
            status, _, _ = request(s.url("/cds-services"), timeout=30)
            assert status == 200
            seen.update(s.workers())
        assert len(seen) > 1, "the worker was replaced after its requests"
        s.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: s.proc.poll() is not None, 30)
        assert s.proc.returncode == 0
        assert "Traceback" not in s.log_text()
