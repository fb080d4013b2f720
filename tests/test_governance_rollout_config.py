"""Rollout modes in the site-policy file: validated at start-up, shown in discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cds_service.errors import ConfigError
from cds_service.hooks.schemas import DiscoverySchema
from cds_service.hooks.services import ROLLOUT_KEY
from tests.conftest import make_app


def policy_file(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "site-policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"IS-9": "silent"}, "site policy: rollout.IS-9 is not a recommendation"),
        ({"IS-1": "quiet"}, "site policy: rollout.IS-1='quiet' must be one of active, silent, off"),
        ({"IS-1": True}, "site policy: rollout.IS-1=True must be one of active, silent, off"),
        (["IS-1"], "site policy: rollout must map recommendation ids to one of"),
    ],
)
def test_a_bad_rollout_stops_start_up_naming_it(
    tmp_path: Path, rollout: object, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app(tmp_path, SITE_POLICY_FILE=policy_file(tmp_path, {"rollout": rollout}))
    assert caught.value.message.startswith(message)


def test_every_recommendation_is_active_by_default(tmp_path: Path) -> None:
    body = make_app(tmp_path).test_client().get("/cds-services").get_json()
    assert DiscoverySchema().validate(body) == {}
    for service in body["services"]:
        modes = service["extension"][ROLLOUT_KEY]
        assert modes and set(modes.values()) == {"active"}
        assert "Rollout:" not in service["description"]
    pv = next(s for s in body["services"] if s["hook"] == "patient-view")
    assert "REF-1" in pv["extension"][ROLLOUT_KEY]  # REF-1 acts on patient-view only
    os_ = next(s for s in body["services"] if s["hook"] == "order-select")
    assert "REF-1" not in os_["extension"][ROLLOUT_KEY]


def test_discovery_shows_the_site_rollout(tmp_path: Path) -> None:
    path = policy_file(
        tmp_path,
        {"rollout": {"CAU-2": "silent", "REF-1": "off", "IS-1": "active"}, "refractory_weeks": 6},
    )
    app = make_app(tmp_path, SITE_POLICY_FILE=path)
    body = app.test_client().get("/cds-services").get_json()
    assert DiscoverySchema().validate(body) == {}
    pv = next(s for s in body["services"] if s["hook"] == "patient-view")
    modes = pv["extension"][ROLLOUT_KEY]
    assert (modes["CAU-2"], modes["REF-1"], modes["IS-1"], modes["MON-1"]) == (
        "silent",
        "off",
        "active",
        "active",
    )
    assert "Rollout: REF-1 off, CAU-2 silent" in pv["description"]
    assert app.extensions["cds_engine"].knowledge.p("refractory_weeks") == 6


def test_readiness_shows_each_recommendations_mode(tmp_path: Path) -> None:
    path = policy_file(tmp_path, {"rollout": {"CAU-2": "silent", "REF-1": "off"}})
    body = make_app(tmp_path, SITE_POLICY_FILE=path).test_client().get("/readyz").get_json()
    assert body["rollout"]["CAU-2"] == "silent"
    assert body["rollout"]["REF-1"] == "off"
    assert body["rollout"]["IS-1"] == "active"
