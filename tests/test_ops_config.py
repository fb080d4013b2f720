"""Configuration errors: one line naming the setting, exit status 2, bounds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.config import BOUNDS, CHOICES, DEFAULTS, describe, load_settings
from cds_service.errors import ConfigError
from tests.ops_support import clean_env, free_port, run_cli

NUMERIC = sorted(
    k for k, v in DEFAULTS.items() if isinstance(v, int | float) and not isinstance(v, bool)
)


@pytest.mark.parametrize(
    ("env", "named", "accepted"),
    [
        ({"CDS_FHIR_BUDGET_SECONDS": "-1"}, "CDS_FHIR_BUDGET_SECONDS", "from 0.01 to 300"),
        ({"CDS_FHIR_TIMEOUT_SECONDS": "NaN"}, "CDS_FHIR_TIMEOUT_SECONDS", "a number from"),
        ({"CDS_MAX_JSON_DEPTH": "-3"}, "CDS_MAX_JSON_DEPTH", "an integer from 4 to 1_000"),
        ({"CDS_AUDIT_QUEUE_SIZE": "lots"}, "CDS_AUDIT_QUEUE_SIZE", "an integer from"),
        ({"CDS_CONSOLE": "perhaps"}, "CDS_CONSOLE", "a boolean"),
        ({"CDS_LOG_FORMAT": "xml"}, "CDS_LOG_FORMAT", "one of text, json"),
        ({"CDS_TRUSTED_ISSUERS_FILE": "/nonexistent/issuers.json"}, "CDS_TRUSTED_ISSUERS_FILE", ""),
        ({"CDS_DATABASE_URL": "mysql://db/x"}, "CDS_DATABASE_URL", "postgresql://"),
    ],
)
def test_serve_with_a_bad_setting_prints_one_line_and_exits_2(
    tmp_path: Path, env: dict[str, str], named: str, accepted: str
) -> None:
    result = run_cli(["serve", "--port", str(free_port())], clean_env(tmp_path, **env))
    assert result.returncode == 2, result.stderr
    # Start-up lines may come first (a fresh SQLite file is migrated); the error is one line.
    errors = [line for line in result.stderr.splitlines() if " error" in line.lower()]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr
    assert errors[0].startswith("cds-service: error: ")
    assert named in errors[0] and accepted in errors[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_every_command_reports_a_bad_setting_the_same_way(tmp_path: Path) -> None:
    env = clean_env(tmp_path, CDS_JWT_LEEWAY_SECONDS="-5")
    for args in (["replay", "fixtures/cau-2-fires"], ["db", "current"]):
        result = run_cli(args, env)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip() == (
            "cds-service: error: CDS_JWT_LEEWAY_SECONDS must be an integer from 0 to 300, not '-5'"
        )


@pytest.mark.parametrize("key", NUMERIC)
def test_every_numeric_setting_has_bounds_around_its_default(key: str) -> None:
    low, high = BOUNDS[key]
    assert low <= DEFAULTS[key] <= high


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_values_outside_the_bounds_are_refused(key: str) -> None:
    low, high = BOUNDS[key]
    outside = [high * 2 + 1, "nan", "inf"] + ([low - 1] if low >= 0 else [])
    for raw in outside:
        with pytest.raises(ConfigError, match=f"CDS_{key} must be"):
            load_settings(environ={f"CDS_{key}": str(raw)})
    assert load_settings(environ={f"CDS_{key}": str(high)})[key] == high


@pytest.mark.parametrize(
    ("config", "key", "expected"),
    [
        ({"MAX_JSON_DEPTH": "10"}, "MAX_JSON_DEPTH", 10),
        ({"FHIR_BUDGET_SECONDS": "0.25"}, "FHIR_BUDGET_SECONDS", 0.25),
        ({"FHIR_BUDGET_SECONDS": 1}, "FHIR_BUDGET_SECONDS", 1.0),
        ({"MAX_JSON_DEPTH": 10.0}, "MAX_JSON_DEPTH", 10),
        ({"VALIDATE_RESPONSES": "no"}, "VALIDATE_RESPONSES", False),
        ({"LOG_LEVEL": "debug"}, "LOG_LEVEL", "DEBUG"),
    ],
)
def test_config_values_are_converted_like_environment_values(
    config: dict[str, object], key: str, expected: object
) -> None:
    value = load_settings(config, environ={})[key]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "config",
    [
        {"FHIR_BUDGET_SECONDS": math.nan},
        {"FHIR_TIMEOUT_SECONDS": -1.0},
        {"MAX_JSON_DEPTH": -1},
        {"MAX_JSON_DEPTH": 10.5},
        {"MAX_JSON_DEPTH": True},
        {"VALIDATE_RESPONSES": "perhaps"},
        {"VALIDATE_RESPONSES": 2},
        {"AUTH": "maybe"},
        {"PUBLIC_BASE_URL": 5},
    ],
)
def test_create_app_checks_its_config_like_the_environment(
    tmp_path: Path, config: dict[str, object]
) -> None:
    (key,) = config
    with pytest.raises(ConfigError, match=f"CDS_{key} must be"):
        create_app({"DATA_DIR": str(tmp_path), **config})


def test_keys_that_are_not_settings_pass_through() -> None:
    assert load_settings({"TESTING": True}, environ={})["TESTING"] is True


def reference() -> str:
    """The configuration reference: docs/configuration.md, or the README's section."""
    root = Path(__file__).resolve().parents[1]
    docs = root / "docs" / "configuration.md"
    return (docs if docs.exists() else root / "README.md").read_text("utf-8")


@pytest.mark.parametrize(
    "key", [k for k in DEFAULTS if k in BOUNDS or k in CHOICES or isinstance(DEFAULTS[k], bool)]
)
def test_the_reference_says_what_each_setting_accepts(key: str) -> None:
    assert f"| `CDS_{key}` | {describe(key)} |" in reference()


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_choices_are_described(key: str) -> None:
    assert describe(key) == "one of " + ", ".join(CHOICES[key])
