"""Snooze across the workers of a real `cds-service serve` on SQLite: an override stored by one
worker holds back the card on every worker's next chart open (the snooze index's stamp)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_service import create_app
from cds_service.fhir.scenarios import build_request, load_scenario
from tests.adversarial.support import PATIENT_VIEW, request, serve, wait_until
from tests.conftest import FIXTURES

HOOK = f"/cds-services/{PATIENT_VIEW}"


def _chart(tmp_path: Path) -> dict[str, Any]:
    """A chart that warns CAU-4 on opening (spasm, myocarditis, an active NSAID)."""
    app = create_app({"AUTH": "disabled", "DATA_DIR": str(tmp_path / "builder")})
    try:
        scenario = load_scenario(FIXTURES / "cau-4-patient-view-active-nsaid")
        return build_request(scenario, app.extensions["cds_registry"])
    finally:
        app.extensions["cds_store"].close()


def _open(url: str, chart: dict[str, Any], patient_id: str) -> dict[str, Any] | None:
    """The CAU-4 card of one chart open (None when held back)."""
    chart["context"]["patientId"] = chart["prefetch"]["patient"]["id"] = patient_id
    status, _, body = request(url, chart, timeout=30)
    assert status == 200, body
    found = [c for c in body["cards"] if c["source"]["topic"]["code"] == "CAU-4"]
    return found[0] if found else None


def test_an_override_stored_by_one_worker_holds_the_card_back_on_every_worker(
    tmp_path: Path,
) -> None:
    chart = _chart(tmp_path)
    with serve(tmp_path, {"CDS_AUTH": "disabled"}, workers=2) as served:
        url = served.url(HOOK)
        # Every worker reads its list of patients with an override (none yet) on these opens.
        for i in range(30):
            assert _open(url, chart, f"pat-other-{i}") is not None
        card = _open(url, chart, "pat-snoozed")
        assert card is not None
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": at,
            "overrideReason": {"reason": card["overrideReasons"][0]},
        }
        status, _, body = request(served.url(f"{HOOK}/feedback"), {"feedback": [item]})
        assert status == 200 and body["stored"] == 1
        # The feedback's worker may store it before the card's worker audits it (found
        # through its card once audited, within a linger of 50 ms): held back from then on.
        wait_until(lambda: _open(url, chart, "pat-snoozed") is None, 10, served.proc)
        assert [_open(url, chart, "pat-snoozed") for _ in range(20)] == [None] * 20
        assert _open(url, chart, "pat-new") is not None
        assert "Traceback" not in served.log_text()
