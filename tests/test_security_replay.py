"""jti replay stores: in-process, and Redis shared by workers (CDS Hooks 2.0 §JWT)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest

from cds_service.security.replay import (
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStoreUnavailable,
)


def test_memory_store_refuses_a_second_use_until_expiry() -> None:
    now = [1000.0]
    store = MemoryReplayStore(clock=lambda: now[0])
    assert store.first_use("iss", "a", expires_at=1300)
    assert not store.first_use("iss", "a", expires_at=1300)
    assert store.first_use("other-iss", "a", expires_at=1300)
    now[0] = 1301.0
    assert store.first_use("iss", "a", expires_at=1600)


def test_memory_store_forgets_expired_jtis() -> None:
    now = [0.0]
    store = MemoryReplayStore(clock=lambda: now[0])
    for n in range(100):
        store.first_use("iss", f"j{n}", expires_at=10)
    now[0] = 11.0
    store.first_use("iss", "late", expires_at=20)
    assert len(store) == 1


@pytest.fixture
def redis_store() -> Iterator[RedisReplayStore]:
    url = os.environ.get("CDS_TEST_REDIS_URL")
    if not url:
        pytest.skip("CDS_TEST_REDIS_URL is not set")
    prefix = f"cds-test-{uuid.uuid4().hex}:jti:"
    store = RedisReplayStore.from_url(url, prefix=prefix)
    yield store
    client = store._client
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.mark.redis
def test_redis_store_is_shared_between_instances(redis_store: RedisReplayStore) -> None:
    other_worker = RedisReplayStore(redis_store._client, prefix=redis_store._prefix)
    expires = time.time() + 60
    assert redis_store.first_use("https://ehr.example.org", "j1", expires)
    assert not other_worker.first_use("https://ehr.example.org", "j1", expires)
    assert other_worker.first_use("https://ehr.example.org", "j2", expires)


@pytest.mark.redis
def test_redis_entry_expires_with_the_token(redis_store: RedisReplayStore) -> None:
    assert redis_store.first_use("iss", "short", time.time() + 1)
    ttl_ms = redis_store._client.pttl(redis_store.key_for("iss", "short"))
    assert 0 < ttl_ms <= 1000
    assert b"short" not in redis_store.key_for("iss", "short").encode()


def test_unreachable_redis_refuses_rather_than_accepts() -> None:
    store = RedisReplayStore.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(ReplayStoreUnavailable):
        store.first_use("iss", "j", time.time() + 60)
