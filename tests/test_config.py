"""Settings are the public interface: parsing, precedence, and every one documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.config import BOUNDS, DEFAULTS, load_settings
from cds_service.errors import ConfigError

CONFIGURATION = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_precedence_defaults_then_environment_then_config() -> None:
    env = {"CDS_MAX_JSON_DEPTH": "10", "CDS_AUTH": "disabled"}
    settings = load_settings({"MAX_JSON_DEPTH": 20}, environ=env)
    assert settings["MAX_JSON_DEPTH"] == 20
    assert settings["AUTH"] == "disabled"
    assert load_settings(environ={})["AUTH"] == "required"


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("CDS_VALIDATE_RESPONSES", "false", False),
        ("CDS_VALIDATE_RESPONSES", "On", True),
        ("CDS_MAX_REQUEST_BYTES", "1024", 1024),
        ("CDS_FHIR_BUDGET_SECONDS", "0.25", 0.25),
        (
            "CDS_FHIR_SERVER_ALLOWLIST",
            "https://ehr.example.org/fhir",
            "https://ehr.example.org/fhir",
        ),
    ],
)
def test_environment_values_take_the_setting_type(name: str, raw: str, value: object) -> None:
    assert load_settings(environ={name: raw})[name.removeprefix("CDS_")] == value


@pytest.mark.parametrize(
    "env",
    [
        {"CDS_AUTH": "maybe"},
        {"CDS_PROFILE": "demo"},
        {"CDS_MAX_REQUEST_BYTES": "lots"},
        {"CDS_VALIDATE_RESPONSES": "perhaps"},
    ],
)
def test_invalid_settings_stop_start_up_naming_them(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ=env)
    assert next(iter(env)).removeprefix("CDS_") in str(raised.value)


def test_local_profile_is_explicit_and_keeps_overrides() -> None:
    settings = load_settings(environ={"CDS_PROFILE": "local", "CDS_AUTH": "required"})
    assert settings["CONSOLE"] is True
    assert settings["AUTH"] == "required"


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_setting_is_documented_in_the_configuration_reference(key: str) -> None:
    assert f"`CDS_{key}`" in CONFIGURATION.read_text(encoding="utf-8")


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_every_bounded_setting_refuses_values_outside_its_bounds(key: str) -> None:
    low, high = BOUNDS[key]
    for bad in (low - 1, high * 2 + 1):
        with pytest.raises(ConfigError, match=f"CDS_{key} must be an? (integer|number) from"):
            load_settings(environ={f"CDS_{key}": str(int(bad))})
    load_settings(environ={f"CDS_{key}": str(DEFAULTS[key])})
