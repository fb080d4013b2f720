"""TokenVerifier without Flask: every attack in issue 6 is refused (CDS Hooks 2.0 §JWT)."""

from __future__ import annotations

import time

import jwt
import pytest

from cds_service.security.issuers import TrustedIssuer, parse_issuers
from cds_service.security.jwks import JwksFetcher
from cds_service.security.local_issuer import LocalIssuer
from cds_service.security.replay import MemoryReplayStore
from cds_service.security.verifier import AuthFailure, TokenVerifier, VerifierSettings
from tests.security_support import JwksServer, alg_none, hs256_with_public_key, unsigned_token

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


def bearer(token: str) -> str:
    return f"Bearer {token}"


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


def _attacks(ec: LocalIssuer, rsa: LocalIssuer) -> dict[str, tuple[str, str]]:
    """name -> (Authorization header, expected reason fragment)."""
    now = time.time()
    other_key_same_kid = LocalIssuer(iss=EHR, kid=ec.kid)
    stranger = LocalIssuer(iss="https://evil.example.org")
    jku = "https://evil.example.org/jwks.json"
    return {
        "expired": (bearer(ec.sign(AUD, now=now - 3600)), "ExpiredSignature"),
        "iat in future": (bearer(ec.sign(AUD, now=now + 600)), "ImmatureSignature"),
        "wrong aud": (bearer(ec.sign("https://cds.example.org/cds-services")), "Audience"),
        "wrong iss": (bearer(stranger.sign(AUD)), "untrusted issuer"),
        "untrusted jku": (bearer(ec.sign(AUD, jku=jku)), "jku"),
        "unknown kid": (bearer(ec.sign(AUD, headers={"kid": "nope"})), "unknown kid"),
        "bad signature": (bearer(other_key_same_kid.sign(AUD)), "Signature"),
        "alg none": (bearer(alg_none(ec, AUD, now)), "algorithm 'none'"),
        "HS256 with public key": (bearer(hs256_with_public_key(ec, AUD, now)), "HS256"),
        "alg other than the key's": (bearer(rsa.sign(AUD, headers={"alg": "PS384"})), "key"),
        "alg of another curve": (bearer(_relabelled(ec.sign(AUD), "ES256", ec.kid)), "key"),
        "missing jti": (bearer(ec.sign(AUD, claims={"jti": None})), "jti"),
        "missing exp": (bearer(_without(ec, "exp")), "exp"),
        "missing iat": (bearer(_without(ec, "iat")), "iat"),
        "exp too far ahead": (bearer(ec.sign(AUD, lifetime=86400)), "too far"),
        "missing header": ("", "missing"),
        "not bearer": (f"Basic {ec.sign(AUD)}", "malformed"),
        "garbage token": ("Bearer abc.def.ghi", "DecodeError"),
        "two tokens": (f"Bearer {ec.sign(AUD)} {ec.sign(AUD)}", "malformed"),
        "wrong typ": (bearer(ec.sign(AUD, headers={"typ": "at+jwt"})), "typ"),
        "missing kid": (bearer(ec.sign(AUD, headers={"kid": None})), "kid"),
    }


def _relabelled(token: str, alg: str, kid: str) -> str:
    """The same signature under a header that names another algorithm."""
    _, body, signature = token.split(".")
    header = unsigned_token({"alg": alg, "typ": "JWT", "kid": kid}, {}).split(".")[0]
    return f"{header}.{body}.{signature}"


def _without(issuer: LocalIssuer, claim: str) -> str:
    payload = {"iss": issuer.iss, "aud": AUD, "jti": "j-" + claim}
    payload |= {"iat": int(time.time()), "exp": int(time.time()) + 60}
    payload.pop(claim)
    return jwt.encode(payload, issuer._key, algorithm="ES384", headers={"kid": issuer.kid})


ATTACK_NAMES = list(_attacks(LocalIssuer(), LocalIssuer(algorithm="RS256")))


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_is_refused_with_its_reason(
    name: str, ec_issuer: LocalIssuer, rsa_issuer: LocalIssuer
) -> None:
    header, fragment = _attacks(ec_issuer, rsa_issuer)[name]
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
