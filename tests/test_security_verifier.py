"""TokenVerifier without Flask: every token attack is refused (CDS Hooks 2.0 §JWT)."""

from __future__ import annotations

import time

import pytest

from cds_service.security.issuers import TrustedIssuer, parse_issuers
from cds_service.security.jwks import JwksFetcher
from cds_service.security.local_issuer import LocalIssuer
from cds_service.security.replay import MemoryReplayStore
from cds_service.security.verifier import AuthFailure, TokenVerifier, VerifierSettings
from tests.security_support import JwksServer, attacks, bearer

AUD = "https://cds.example.org/cds-services/myopathy-patient-view"
EHR = "https://ehr.example.org"


@pytest.fixture(scope="module")
def ec_issuer() -> LocalIssuer:
    return LocalIssuer(iss=EHR, algorithm="ES384")


@pytest.fixture(scope="module")
def rsa_issuer() -> LocalIssuer:
    return LocalIssuer(iss="https://rsa.example.org", algorithm="RS384")


def make_verifier(*issuers: LocalIssuer, **kwargs: object) -> TokenVerifier:
    document = {"issuers": [i.issuer_entry() for i in issuers]}
    trusted = parse_issuers(document, allow_loopback_http=False)
    return TokenVerifier(trusted, JwksFetcher(), MemoryReplayStore(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["ES384", "ES256", "ES512", "RS384", "RS256", "PS256"])
def test_valid_token_is_accepted_for_each_asymmetric_algorithm(algorithm: str) -> None:
    issuer = LocalIssuer(iss=EHR, algorithm=algorithm)
    verified = make_verifier(issuer).verify(bearer(issuer.sign(AUD)), AUD)
    assert (verified.iss, verified.kid) == (EHR, issuer.kid)


def test_audience_may_be_an_array_containing_the_called_url(ec_issuer: LocalIssuer) -> None:
    token = ec_issuer.sign([f"{AUD}/other", AUD])
    assert make_verifier(ec_issuer).verify(bearer(token), AUD).iss == EHR


def test_tenant_is_checked_when_the_issuer_lists_tenants(ec_issuer: LocalIssuer) -> None:
    document = {"issuers": [ec_issuer.issuer_entry(tenants=["t1"])]}
    trusted = parse_issuers(document, allow_loopback_http=False)
    verifier = TokenVerifier(trusted, JwksFetcher(), MemoryReplayStore())
    assert verifier.verify(bearer(ec_issuer.sign(AUD, tenant="t1")), AUD).tenant == "t1"
    for token in (ec_issuer.sign(AUD, tenant="t2"), ec_issuer.sign(AUD)):
        with pytest.raises(AuthFailure, match="tenant"):
            verifier.verify(bearer(token), AUD)


ATTACK_NAMES = list(attacks(LocalIssuer(), LocalIssuer(algorithm="RS256"), AUD))


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_is_refused_with_its_reason(
    name: str, ec_issuer: LocalIssuer, rsa_issuer: LocalIssuer
) -> None:
    header, fragment = attacks(ec_issuer, rsa_issuer, AUD)[name]
    with pytest.raises(AuthFailure) as caught:
        make_verifier(ec_issuer, rsa_issuer).verify(header, AUD)
    assert fragment.lower() in caught.value.reason.lower()


def test_replayed_jti_is_refused_but_fresh_jtis_pass(ec_issuer: LocalIssuer) -> None:
    verifier = make_verifier(ec_issuer)
    token = ec_issuer.sign(AUD, jti="once")
    verifier.verify(bearer(token), AUD)
    with pytest.raises(AuthFailure, match="replayed"):
        verifier.verify(bearer(token), AUD)
    verifier.verify(bearer(ec_issuer.sign(AUD)), AUD)


def test_refused_token_does_not_burn_its_jti(ec_issuer: LocalIssuer) -> None:
    verifier = make_verifier(ec_issuer)
    with pytest.raises(AuthFailure):
        verifier.verify(bearer(ec_issuer.sign("https://wrong.example.org", jti="j7")), AUD)
    verifier.verify(bearer(ec_issuer.sign(AUD, jti="j7")), AUD)


def test_leeway_tolerates_small_clock_skew(ec_issuer: LocalIssuer) -> None:
    verifier = make_verifier(ec_issuer, settings=VerifierSettings(leeway_seconds=30))
    token = ec_issuer.sign(AUD, now=time.time() + 10)
    assert verifier.verify(bearer(token), AUD).iss == EHR


def test_token_with_trusted_iss_but_key_of_another_issuer_is_refused(
    ec_issuer: LocalIssuer, rsa_issuer: LocalIssuer
) -> None:
    """An issuer cannot borrow another issuer's kid."""
    forged = LocalIssuer(iss=EHR, kid=rsa_issuer.kid, algorithm="RS384", private_key=None)
    verifier = make_verifier(ec_issuer, rsa_issuer)
    with pytest.raises(AuthFailure, match="unknown kid"):
        verifier.verify(bearer(forged.sign(AUD)), AUD)


def test_jku_keys_are_fetched_cached_and_refetched_once_on_rotation() -> None:
    issuer = LocalIssuer(iss=EHR)
    with JwksServer().running() as server:
        url = server.url("/jwks.json")
        server.documents["/jwks.json"] = issuer.jwks()
        document = {"issuers": [issuer.issuer_entry(jku=[url])]}
        trusted = parse_issuers(document, allow_loopback_http=True)
        fetcher = JwksFetcher(allow_loopback_http=True, min_refetch_seconds=0, timeout=2)
        verifier = TokenVerifier(trusted, fetcher, MemoryReplayStore())
        for _ in range(3):
            verifier.verify(bearer(issuer.sign(AUD, jku=url)), AUD)
        assert server.hits["/jwks.json"] == 1
        rotated = LocalIssuer(iss=EHR)
        server.documents["/jwks.json"] = rotated.jwks()
        verifier.verify(bearer(rotated.sign(AUD, jku=url)), AUD)
        assert server.hits["/jwks.json"] == 2
        with pytest.raises(AuthFailure, match="unknown kid"):
            verifier.verify(bearer(issuer.sign(AUD, headers={"kid": "gone"})), AUD)
        assert server.hits["/jwks.json"] == 3


def test_unknown_kids_cannot_force_a_fetch_storm() -> None:
    issuer = LocalIssuer(iss=EHR)
    with JwksServer().running() as server:
        url = server.url("/jwks.json")
        server.documents["/jwks.json"] = issuer.jwks()
        trusted = parse_issuers(
            {"issuers": [issuer.issuer_entry(jku=[url])]}, allow_loopback_http=True
        )
        fetcher = JwksFetcher(allow_loopback_http=True, min_refetch_seconds=60)
        verifier = TokenVerifier(trusted, fetcher, MemoryReplayStore())
        for n in range(5):
            with pytest.raises(AuthFailure, match="unknown kid"):
                verifier.verify(bearer(issuer.sign(AUD, headers={"kid": f"k{n}"})), AUD)
        assert server.hits["/jwks.json"] == 1


def test_jku_fetch_failure_refuses_without_crashing() -> None:
    issuer = LocalIssuer(iss=EHR)
    with JwksServer().running() as server:
        url = server.url("/missing.json")
        trusted = parse_issuers(
            {"issuers": [issuer.issuer_entry(jku=[url])]}, allow_loopback_http=True
        )
        verifier = TokenVerifier(
            trusted, JwksFetcher(allow_loopback_http=True), MemoryReplayStore()
        )
        with pytest.raises(AuthFailure, match="unknown kid"):
            verifier.verify(bearer(issuer.sign(AUD)), AUD)
        assert server.hits["/missing.json"] == 1


def test_loopback_http_jku_is_not_fetched_unless_allowed() -> None:
    issuer = LocalIssuer(iss=EHR)
    with JwksServer().running() as server:
        url = server.url("/jwks.json")
        server.documents["/jwks.json"] = issuer.jwks()
        trusted = {EHR: TrustedIssuer(iss=EHR, jku=(url,))}
        verifier = TokenVerifier(trusted, JwksFetcher(), MemoryReplayStore())
        with pytest.raises(AuthFailure, match="unknown kid"):
            verifier.verify(bearer(issuer.sign(AUD, jku=url)), AUD)
        assert server.hits == {}
