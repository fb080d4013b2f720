"""The FHIR server allow-list (SSRF guard): prefixes compared on parsed URL parts."""

from __future__ import annotations

import pytest

from cds_service.errors import ConfigError
from cds_service.fhir.allowlist import ServerPolicy
from cds_service.fhir.errors import FhirForbiddenServer

POLICY = ServerPolicy.from_settings(
    "https://ehr.example.org/fhir, https://fhir.hospital.test:8443/r4/,http://127.0.0.1:8090",
    allow_loopback_http=True,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/fhir",
        "https://ehr.example.org/fhir/",
        "https://EHR.Example.ORG/fhir/Patient/1",
        "https://ehr.example.org:443/fhir/Observation?patient=1",
        "https://ehr.example.org./fhir",
        "https://fhir.hospital.test:8443/r4",
        "http://127.0.0.1:8090/",
        "http://127.0.0.1:8090/any/path",
    ],
)
def test_allowed(url: str) -> None:
    POLICY.check(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "plain http"),
        ("https://169.254.169.254/fhir", "allow-list"),
        ("https://ehr.example.org.evil.com/fhir", "allow-list"),
        ("https://evil.com/ehr.example.org/fhir", "allow-list"),
        ("https://ehr.example.org@evil.com/fhir", "user information"),
        ("https://evil.com@ehr.example.org/fhir", "user information"),
        ("https://user:pw@ehr.example.org/fhir", "user information"),
        ("https://ehr.example.org/fhirx", "allow-list"),
        ("https://ehr.example.org/other", "allow-list"),
        ("https://ehr.example.org/fhir/../admin", "dot segments"),
        ("https://ehr.example.org/fhir/%2e%2e/admin", "dot segments"),
        ("https://ehr.example.org/fhir%2f..%2fadmin", "dot segments"),
        ("https://ehr.example.org:8443/fhir", "allow-list"),
        ("http://ehr.example.org/fhir", "plain http"),
        ("https://fhir.hospital.test/r4", "allow-list"),
        ("http://127.0.0.1:8091/", "allow-list"),
        ("http://2130706433:8090/", "plain http"),
        ("http://127.0.0.1:8090\\@evil.com/", "unsafe"),
        ("https://ehr.example.org/fhir /x", "unsafe"),
        ("ftp://ehr.example.org/fhir", "scheme"),
        ("//ehr.example.org/fhir", "scheme"),
        ("https:///fhir", "no host"),
        ("https://ehr.example.org:99999/fhir", "parsed"),
        ("", "empty"),
    ],
)
def test_refused(url: str, why: str) -> None:
    with pytest.raises(FhirForbiddenServer, match=why):
        POLICY.check(url)


def test_plain_http_to_loopback_needs_the_setting() -> None:
    strict = ServerPolicy.from_settings("http://127.0.0.1:8090", allow_loopback_http=False)
    with pytest.raises(FhirForbiddenServer, match="plain http"):
        strict.check("http://127.0.0.1:8090/Patient/1")


def test_plain_http_never_allowed_off_loopback_even_when_listed() -> None:
    policy = ServerPolicy.from_settings("http://ehr.example.org", allow_loopback_http=True)
    with pytest.raises(FhirForbiddenServer, match="plain http"):
        policy.check("http://ehr.example.org/Patient/1")


def test_loopback_entry_without_port_allows_any_port_other_hosts_only_default() -> None:
    policy = ServerPolicy.from_settings("http://localhost,https://ehr.test", True)
    policy.check("http://localhost:5123/fhir")
    policy.check("https://ehr.test:443/fhir")
    with pytest.raises(FhirForbiddenServer, match="allow-list"):
        policy.check("https://ehr.test:8443/fhir")
    with pytest.raises(FhirForbiddenServer, match="allow-list"):
        policy.check("http://127.0.0.1:5123/fhir")


def test_empty_allowlist_trusts_nobody() -> None:
    with pytest.raises(FhirForbiddenServer, match="allow-list"):
        ServerPolicy.from_settings("", allow_loopback_http=True).check("http://127.0.0.1/")


def test_links_must_stay_under_the_request_server() -> None:
    base = "https://ehr.example.org/fhir/tenant-a"
    POLICY.check_within(base, "https://ehr.example.org/fhir/tenant-a/Observation?page=2")
    with pytest.raises(FhirForbiddenServer, match="leaves"):
        POLICY.check_within(base, "https://ehr.example.org/fhir/tenant-b/Observation?page=2")
    with pytest.raises(FhirForbiddenServer, match="leaves"):
        POLICY.check_within(base, "https://fhir.hospital.test:8443/r4/Observation")


@pytest.mark.parametrize("entry", ["ftp://x.org", "https://user@x.org", "not a url"])
def test_malformed_allowlist_entry_stops_the_app(entry: str) -> None:
    with pytest.raises(ConfigError, match="CDS_FHIR_SERVER_ALLOWLIST"):
        ServerPolicy.from_settings(entry, allow_loopback_http=False)
