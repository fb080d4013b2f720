"""Three instances sharing PostgreSQL and Redis behind nginx behave as one service.

Loopback only, free ports, a database and a Redis key prefix of its own; everything it starts
it stops by PID. Runs under `make test` when nginx, CDS_TEST_POSTGRES_URL and
CDS_TEST_REDIS_URL are there (.ci/run provides all three) and says why it skips otherwise.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests
from cluster import NGINX, REPO, Instance, Proxy, fail_timeout_seconds, free_port, wait_until
from sqlalchemy.engine import make_url

from cds_service.fhir.scenarios import load_scenario
from cds_service.security.local_issuer import LocalIssuer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Patient-view scenarios whose request carries its prefetch; each answers with two cards.
SCENARIOS = ["assess-1-missing-data", "mon-1-missing-labs"]
LOAD_ISSUERS = 30  # the load is spread so that no issuer comes near RATE_LIMIT
RATE_LIMIT = 400  # per issuer per minute, counted in Redis across the instances
HOOK_CALLS = 300
FEEDBACK_POSTS = 3000
KILL_PHASE_POSTS = 1500
THREADS = 12


@dataclass
class Cluster:
    instances: list[Instance]
    proxy: Proxy
    database_url: str
    redis_url: str
    prefix: str
    issuers: list[LocalIssuer]
    rate_issuer: LocalIssuer
    env: dict[str, str]

    def aud(self, path: str) -> str:
        return f"{self.proxy.url}{path}"

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return list(conn.execute(query).fetchall())


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.skip(f"{name} is not set: the multi-instance test needs PostgreSQL and Redis")
    return value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    admin_url, redis_url = _require("CDS_TEST_POSTGRES_URL"), _require("CDS_TEST_REDIS_URL")
    import redis

    work = tmp_path_factory.mktemp("multi")
    name = f"cds_multi_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    prefix = f"cds-multi-{secrets.token_hex(6)}:"
    issuers = [LocalIssuer(iss=f"https://ehr-{n}.example.org") for n in range(LOAD_ISSUERS)]
    rate_issuer = LocalIssuer(iss="https://busy-ehr.example.org")
    issuers_file = work / "issuers.json"
    entries = [i.issuer_entry() for i in [*issuers, rate_issuer]]
    issuers_file.write_text(json.dumps({"issuers": entries}))
    proxy = Proxy(port=free_port(), workdir=work / "nginx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env.update(
        {
            "CDS_DATABASE_URL": database_url,
            "CDS_REDIS_URL": redis_url,
            "CDS_REDIS_KEY_PREFIX": prefix,
            "CDS_TRUSTED_ISSUERS_FILE": str(issuers_file),
            "CDS_PUBLIC_BASE_URL": proxy.url,
            "CDS_RATE_LIMIT": f"{RATE_LIMIT} per minute",
            "CDS_DATA_DIR": str(work / "data"),
            "CDS_LOG_LEVEL": "WARNING",
        }
    )
    instances = [Instance(f"cds-{n}", free_port(), env, work / f"cds-{n}.log") for n in range(1, 4)]
    cluster = Cluster(instances, proxy, database_url, redis_url, prefix, issuers, rate_issuer, env)
    try:
        # The one-shot job compose and Kubernetes run before any replica starts.
        upgrade = subprocess.run(
            [sys.executable, "-m", "cds_service", "db", "upgrade"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert upgrade.returncode == 0, upgrade.stderr
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
        proxy.start(instances)
        yield cluster
    finally:
        proxy.stop()
        for instance in instances:
            instance.stop()
        server = redis.Redis.from_url(redis_url)
        for key in server.scan_iter(match=f"*{prefix}*", count=1000):
            server.delete(key)
        server.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- clients --------------------------------------------------------------------------------


@dataclass
class Client:
    """One EHR thread: its own keep-alive session; a fresh JWT per call, issuers in turn."""

    cluster: Cluster
    session: requests.Session = field(default_factory=requests.Session)
    turn: Iterator[int] = field(default_factory=itertools.count)

    def post(self, path: str, body: dict[str, Any], base: str | None = None) -> requests.Response:
        issuers = self.cluster.issuers
        headers = issuers[next(self.turn) % len(issuers)].authorization(self.cluster.aud(path))
        url = f"{base or self.cluster.proxy.url}{path}"
        return self.session.post(url, json=body, headers=headers, timeout=30)

    def post_until_acknowledged(self, path: str, body: dict[str, Any]) -> tuple[int, int]:
        """Feedback is idempotent: retry what was not acknowledged. (stored, failures seen)."""
        for failures in range(40):
            try:
                response = self.post(path, body)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # A replica killed after the proxy relayed its headers leaves the answer cut
                # short: not an acknowledgement, so retried like a dropped connection.
                response = None
            if response is not None and response.status_code == 200:
                return int(response.json()["stored"]), failures
            # Only a replica going away (502 from the proxy, a dropped connection) is retried.
            assert response is None or response.status_code == 502, response.text
            time.sleep(0.1)
        raise AssertionError(f"feedback never acknowledged: {path}")


def _hook_bodies() -> list[tuple[str, dict[str, Any]]]:
    """(service id, request) of scenarios whose request carries its own prefetch."""
    bodies = []
    for name in SCENARIOS:
        scenario = load_scenario(REPO / "fixtures" / name)
        request = scenario.request
        body = {
            "hook": request["hook"],
            "context": request["context"],
            "prefetch": request["prefetch"],
        }
        bodies.append((scenario.service_id, body))
    return bodies


def _feedback(card: str, n: int, suggestion: str | None = None) -> dict[str, Any]:
    """Feedback item n on a card: accepted (a third, when it has a suggestion) or overridden."""
    at = datetime(2026, 11, 20, 10, tzinfo=UTC) + timedelta(seconds=n)
    item: dict[str, Any] = {"card": card, "outcomeTimestamp": at.isoformat()}
    if suggestion and n % 3 == 0:
        item["outcome"] = "accepted"
        item["acceptedSuggestions"] = [{"id": suggestion}]
    else:
        item["outcome"] = "overridden"
        reason = {"system": "http://example.org/override", "code": f"r{n % 2}"}
        item["overrideReason"] = {"reason": reason}
    return {"feedback": [item]}


def _spread(
    cluster: Cluster, jobs: list[Any], work: Callable[[Client, Any], None], threads: int
) -> None:
    """Run `work` over the jobs on `threads` EHR threads."""
    cursor = itertools.count()
    lock = threading.Lock()

    def run(index: int) -> None:
        client = Client(cluster, turn=itertools.count(index))
        while True:
            with lock:
                position = next(cursor)
            if position >= len(jobs):
                return
            work(client, jobs[position])

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(run, n) for n in range(threads)]:
            future.result()


# --- the tests, in the order written: later ones read what earlier ones stored ---------------


def test_a_jwt_used_on_one_instance_is_refused_on_another(cluster: Cluster) -> None:
    issuer = cluster.issuers[0]
    headers = issuer.authorization(cluster.aud("/cds-services"))
    first, second, third = cluster.instances
    assert requests.get(f"{first.url}/cds-services", headers=headers, timeout=10).ok
    again = requests.get(f"{second.url}/cds-services", headers=headers, timeout=10)
    assert again.status_code == 401
    assert (
        requests.get(f"{cluster.proxy.url}/cds-services", headers=headers, timeout=10).status_code
        == 401
    )
    fresh = issuer.authorization(cluster.aud("/cds-services"))
    assert requests.get(f"{third.url}/cds-services", headers=fresh, timeout=10).ok


def test_the_per_issuer_rate_limit_is_counted_across_instances(cluster: Cluster) -> None:
    issuer, path = cluster.rate_issuer, "/cds-services"
    session = requests.Session()
    statuses = Counter()
    for n in range(RATE_LIMIT):
        instance = cluster.instances[n % 3]
        headers = issuer.authorization(cluster.aud(path))
        statuses[session.get(f"{instance.url}{path}", headers=headers, timeout=10).status_code] += 1
    assert statuses == {200: RATE_LIMIT}  # each instance alone saw only a third of them
    for instance in cluster.instances:
        refused = session.get(
            f"{instance.url}{path}", headers=issuer.authorization(cluster.aud(path)), timeout=10
        )
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
    other = cluster.issuers[1].authorization(cluster.aud(path))
    assert session.get(f"{cluster.proxy.url}{path}", headers=other, timeout=10).ok


def test_feedback_spread_over_instances_is_stored_once_and_every_answered_call_audited(
    cluster: Cluster,
) -> None:
    """300 hook calls, each followed at once by feedback on its cards: 3,000 posts in all."""
    bodies = _hook_bodies()
    per_call = FEEDBACK_POSTS // HOOK_CALLS
    answered: list[str] = []
    cards_seen: list[str] = []
    stored: list[int] = []
    lock = threading.Lock()

    def call_then_feedback(client: Client, n: int) -> None:
        service, body = bodies[n % len(bodies)]
        instance = str(uuid.uuid4())
        response = client.post(f"/cds-services/{service}", {**body, "hookInstance": instance})
        assert response.status_code == 200, response.text
        cards = [
            (card["uuid"], (card.get("suggestions") or [{}])[0].get("uuid"))
            for card in response.json()["cards"]
        ]
        # assess-1-missing-data answers 2 cards, mon-1-missing-labs 1 (the folded follow-up).
        assert len(cards) in (1, 2), response.text
        per_card = per_call // len(cards)
        with lock:
            answered.append(instance)
            cards_seen.extend(card for card, _ in cards)
        # Straight after the answer, while the audit writer may not have committed it yet.
        for card, suggestion in cards:
            for k in range(per_card):
                got, _ = client.post_until_acknowledged(
                    f"/cds-services/{service}/feedback", _feedback(card, k, suggestion)
                )
                with lock:
                    stored.append(got)

    started = time.monotonic()
    _spread(cluster, list(range(HOOK_CALLS)), call_then_feedback, THREADS)
    elapsed = time.monotonic() - started
    posts = len(stored)
    print(f"\n{HOOK_CALLS} hook calls and {posts} feedback posts in {elapsed:.1f} s")
    assert sum(stored) == posts  # every post stored its item (no identical retries here)
    rows = cluster.sql("SELECT card_uuid, outcome_timestamp, count(*) FROM feedback GROUP BY 1, 2")
    assert len(rows) == posts and {count for *_, count in rows} == {1}
    assert {card for card, *_ in rows} <= set(cards_seen)

    def audited() -> bool:
        return cluster.sql("SELECT count(*) FROM audit_hook_call")[0][0] >= len(answered)

    wait_until(audited, 20, "audit records of every answered call")
    calls = cluster.sql("SELECT hook_instance, count(*) FROM audit_hook_call GROUP BY 1")
    assert dict(calls) == dict.fromkeys(answered, 1)
    # The replicas generated the audit hash key together: one patient, one hash everywhere.
    patients = {body["context"]["patientId"] for _, body in bodies}
    hashes = cluster.sql("SELECT DISTINCT patient_hash FROM audit_hook_call")
    assert len(hashes) == len(patients) and None not in {h for (h,) in hashes}
    upstreams = Counter(
        line.split("upstream=")[1].split()[0]
        for line in cluster.proxy.access_lines()
        if "/feedback" in line
    )
    assert {f"127.0.0.1:{i.port}" for i in cluster.instances} <= set(upstreams)


def test_a_killed_instance_is_routed_around_and_no_acknowledged_feedback_is_lost(
    cluster: Cluster,
) -> None:
    cards = [row[0] for row in cluster.sql("SELECT DISTINCT card_uuid FROM audit_card")]
    service = dict(cluster.sql("SELECT card_uuid, service_id FROM audit_card"))
    before = cluster.sql("SELECT count(*) FROM feedback")[0][0]
    # At least KILL_PHASE_POSTS, and on until 300 have been acknowledged after the restart
    # however long the restart takes on a busy machine (capped: the loop is bounded).
    jobs = [(cards[n % len(cards)], 1000 + n) for n in range(3 * KILL_PHASE_POSTS)]
    victim = cluster.instances[1]
    acked: list[tuple[float, tuple[str, int]]] = []
    failures: list[int] = []
    lock = threading.Lock()
    events: dict[str, float] = {}
    retry_after_failure = fail_timeout_seconds()

    def enough() -> bool:
        """A full phase, then 300 posts after nginx has had its chance to try the victim again."""
        if "back" not in events or len(acked) < KILL_PHASE_POSTS:
            return False
        since = events["back"] + retry_after_failure
        return sum(1 for at, _ in reversed(acked) if at >= since) >= 300

    def post(client: Client, job: tuple[str, int]) -> None:
        if enough():
            return
        card, n = job
        _, failed = client.post_until_acknowledged(
            f"/cds-services/{service[card]}/feedback", _feedback(card, n)
        )
        with lock:
            acked.append((time.monotonic(), job))
            failures.append(failed)

    def chaos() -> None:
        wait_until(lambda: len(acked) >= KILL_PHASE_POSTS // 10, 60, "a tenth acked")
        events["killed"] = time.monotonic()
        victim.kill()
        time.sleep(1.5)  # down for a while: every request meanwhile goes to the other two
        events["restarting"] = time.monotonic()
        victim.start()
        victim.wait_ready()
        events["back"] = time.monotonic()

    killer = threading.Thread(target=chaos)
    started = time.monotonic()
    killer.start()
    _spread(cluster, jobs, post, 8)
    killer.join(60)
    assert set(events) == {"killed", "restarting", "back"}, "the load ended before the restart"
    assert enough(), "the load ended before enough posts after the restart"
    # No acknowledged feedback lost; none stored twice (the natural key makes retries no-ops).
    rows = cluster.sql("SELECT card_uuid, outcome_timestamp, count(*) FROM feedback GROUP BY 1, 2")
    assert {count for *_, count in rows} == {1}
    assert len(rows) == before + len(acked)
    stamps = {(card, ts.astimezone(UTC)) for card, ts, _ in rows}
    for _, (card, n) in acked:
        assert (card, datetime(2026, 11, 20, 10, tzinfo=UTC) + timedelta(seconds=n)) in stamps

    def rate(start: float, end: float) -> float:
        done = sum(1 for at, _ in acked if start <= at < end)
        return done / max(end - start, 1e-6)

    finished = max(at for at, _ in acked)
    pre = rate(started, events["killed"])
    during = rate(events["killed"], events["back"])
    after = rate(events["back"] + retry_after_failure, finished)
    print(
        f"\nfeedback/s: before kill {pre:.0f}, while down {during:.0f},"
        f" after restart (+ fail_timeout) {after:.0f};"
        f" posts that needed a retry: {sum(1 for f in failures if f)} of {len(acked)};"
        f" down {events['restarting'] - events['killed']:.1f} s, then ready after"
        f" {events['back'] - events['restarting']:.1f} s"
    )
    # Only requests in flight at the kill can fail; the proxy sends the rest elsewhere.
    assert sum(1 for f in failures if f) <= 8 * 2
    assert during > 0
    # Once nginx tries it again (fail_timeout after its last failure), the restarted instance
    # takes its share again, and throughput is back near where it was.
    victim_addr = f"upstream=127.0.0.1:{victim.port}"
    tail = [line for line in cluster.proxy.access_lines() if "/feedback" in line][-300:]
    assert sum(victim_addr in line for line in tail) >= 30
    assert after >= 0.4 * pre


def test_a_replica_stopped_by_sigterm_writes_the_audit_of_every_call_it_answered(
    cluster: Cluster,
) -> None:
    """A rolling update stops replicas with SIGTERM: no answered call may miss its audit."""
    victim = cluster.instances[2]
    bodies = _hook_bodies()
    answered: list[str] = []
    lock = threading.Lock()

    def call(client: Client, n: int) -> None:
        service, body = bodies[n % len(bodies)]
        instance = str(uuid.uuid4())
        try:
            response = client.post(
                f"/cds-services/{service}", {**body, "hookInstance": instance}, base=victim.url
            )
        except requests.ConnectionError:
            return  # refused once it stopped listening: not answered, nothing to audit
        if response.status_code == 200:
            with lock:
                answered.append(instance)

    def stop_mid_load() -> None:
        wait_until(lambda: len(answered) >= 40, 60, "calls answered")
        victim.terminate()  # while calls are in flight: answered ones are still being queued

    stopper = threading.Thread(target=stop_mid_load)
    stopper.start()
    _spread(cluster, list(range(400)), call, 8)
    stopper.join(60)
    assert victim.proc is not None and victim.proc.returncode is not None
    try:
        found = cluster.sql("SELECT hook_instance FROM audit_hook_call")
        assert set(answered) <= {instance for (instance,) in found}
    finally:
        victim.start()
        victim.wait_ready()


def test_the_report_counts_exactly_what_the_database_holds(cluster: Cluster) -> None:
    stranger = str(uuid.uuid4())
    client = Client(cluster)
    got, _ = client.post_until_acknowledged(
        "/cds-services/myopathy-patient-view/feedback", _feedback(stranger, 1)
    )
    assert got == 1
    report = subprocess.run(
        [sys.executable, "-m", "cds_service", "report", "--json", "--period", "day"],
        env=cluster.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(report.stdout)
    shown = dict(cluster.sql("SELECT recommendation_id, count(*) FROM audit_card GROUP BY 1"))
    outcomes = cluster.sql(
        "SELECT c.recommendation_id,"
        " count(DISTINCT f.card_uuid) FILTER (WHERE f.outcome = 'accepted'),"
        " count(DISTINCT f.card_uuid) FILTER (WHERE f.outcome = 'overridden')"
        " FROM audit_card c JOIN feedback f"
        " ON f.card_uuid = c.card_uuid AND f.service_id = c.service_id GROUP BY 1"
    )
    unknown = cluster.sql(
        "SELECT count(*) FROM feedback f WHERE NOT EXISTS (SELECT 1 FROM audit_card c"
        " WHERE c.card_uuid = f.card_uuid AND c.service_id = f.service_id)"
    )[0][0]
    by_rec: dict[str, list[int]] = {}
    for row in data["rows"]:
        totals = by_rec.setdefault(row["recommendation_id"], [0, 0, 0])
        totals[0] += row["shown"]
        totals[1] += row["accepted"]
        totals[2] += row["overridden"]
    expected = {rec: [count, 0, 0] for rec, count in shown.items()}
    for rec, accepted, overridden in outcomes:
        expected[rec][1:] = [accepted, overridden]
    assert by_rec == expected
    # Only the stranger's card is unknown: no feedback raced its card's audit record for good.
    assert data["feedbackForUnknownCards"] == unknown == 1


def test_every_redis_key_written_starts_with_the_prefix(cluster: Cluster) -> None:
    import redis

    server = redis.Redis.from_url(cluster.redis_url)
    try:
        keys = [k.decode() for k in server.scan_iter(match=f"*{cluster.prefix}*", count=1000)]
    finally:
        server.close()
    assert {key[len(cluster.prefix) :].split(":", 1)[0] for key in keys} == {"jti", "rate"}
    assert [key for key in keys if not key.startswith(cluster.prefix)] == []
