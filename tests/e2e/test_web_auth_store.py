"""The token store on real Redis, with short windows: what the API's 401 and 429 rest on.

A blocked address is let in again once its window passes; concurrent failures are all counted
(one atomic function, no lost increments); a revoked token's record is forgotten after the
retention; the number kept is bounded; a record that does not decode is left out of the list
and can still be revoked.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from errands import App
from errands.web.tokens import TokenLimitReached, TokenRefused, TokenStore, TooManyFailures

_BAD = "erd_000000000000_" + "x" * 43


async def _outcome(store: TokenStore, token: str, client: str) -> str:
    try:
        await store.check(token, client)
    except TokenRefused:
        return "refused"
    except TooManyFailures:
        return "blocked"
    return "ok"


async def test_a_blocked_address_is_let_in_again_once_its_window_passes(app: App) -> None:
    store = TokenStore(app, block_after=3, window_s=0.5)
    try:
        token, _ = await store.create(["read"])
        outcomes = [await _outcome(store, _BAD, "10.2.0.1") for _ in range(3)]
        assert outcomes == ["refused"] * 3
        assert await _outcome(store, token, "10.2.0.1") == "blocked"
        assert await _outcome(store, token, "10.2.0.2") == "ok"
        deadline = time.monotonic() + 5
        while await _outcome(store, token, "10.2.0.1") == "blocked":
            assert time.monotonic() < deadline, "the window did not pass"
            await asyncio.sleep(0.05)
        assert await _outcome(store, token, "10.2.0.1") == "ok"
    finally:
        await app.broker.aclose()


async def test_concurrent_failures_from_one_address_are_all_counted(app: App) -> None:
    store = TokenStore(app, block_after=10, window_s=30)
    try:
        outcomes = await asyncio.gather(*(_outcome(store, _BAD, "10.3.0.1") for _ in range(40)))
        counted = outcomes.count("refused")
        assert counted >= 10
        assert counted + outcomes.count("blocked") == 40
    finally:
        await app.broker.aclose()
    client = redis.Redis.from_url(app.broker_url)
    try:
        stored = client.get(f"{app.namespace}:{{web:tokens}}:fails:10.3.0.1")
        assert stored is not None
        assert int(stored) == counted
    finally:
        client.close()


async def test_a_revoked_token_stays_listed_for_the_retention_then_goes(app: App) -> None:
    store = TokenStore(app, keep_s=0.3)
    try:
        _, gone = await store.create(["read"], note="revoked")
        _, kept = await store.create(["read"], note="kept")
        assert await store.revoke(gone.id)
        assert [i.state(time.time()) for i in await store.list()] == ["revoked", "active"]
        deadline = time.monotonic() + 5
        while gone.id in {info.id for info in await store.list()}:
            assert time.monotonic() < deadline, "the revoked record was not forgotten"
            await store.create(["read"], note="a write forgets what is due")
            await asyncio.sleep(0.05)
        assert kept.id in {info.id for info in await store.list()}
        assert not await store.revoke(gone.id)
    finally:
        await app.broker.aclose()


async def test_no_more_tokens_are_kept_than_the_most_until_some_are_forgotten(app: App) -> None:
    store = TokenStore(app, keep_s=0.2, max_tokens=2)
    try:
        _, first = await store.create(["read"])
        await store.create(["read"])
        with pytest.raises(TokenLimitReached, match="2 tokens are kept already"):
            await store.create(["read"])
        assert len(await store.list()) == 2
        assert await store.revoke(first.id)
        deadline = time.monotonic() + 5
        while True:
            try:
                await store.create(["read"])
                break
            except TokenLimitReached:
                assert time.monotonic() < deadline, "the revoked token was not forgotten"
                await asyncio.sleep(0.05)
        assert first.id not in {info.id for info in await store.list()}
    finally:
        await app.broker.aclose()


@pytest.mark.parametrize("record", [b"\xff not json", b'{"id": "other"}'])
async def test_a_corrupt_record_is_left_out_of_the_list_and_can_be_revoked(
    app: App, record: bytes
) -> None:
    store = TokenStore(app)
    try:
        token, info = await store.create(["read"])
        client = redis.Redis.from_url(app.broker_url)
        try:
            client.hset(f"{app.namespace}:{{web:tokens}}:tokens", info.id, record)
        finally:
            client.close()
        assert await store.list() == []
        assert await store.verify(token) is None
        assert await _outcome(store, token, "10.4.0.1") == "refused"
        assert await store.revoke(info.id)
    finally:
        await app.broker.aclose()
