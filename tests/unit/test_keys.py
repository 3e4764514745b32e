"""Redis key names: one hash tag per queue, KEYS in the order the Lua library reads them."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from redis.crc import key_slot

from errands import ConfigurationError
from errands.broker.redis import RedisBroker
from errands.broker.redis.keys import (
    KEY_SUFFIXES,
    QueueKeys,
    check_queue_name,
    queues_registry_key,
)


def shared_lua() -> str:
    return (resources.files("errands.broker.redis") / "lua" / "00_shared.lua").read_text("utf-8")


def test_every_key_of_a_queue_carries_the_queue_as_its_hash_tag() -> None:
    keys = QueueKeys("app", "emails")
    assert keys.all == tuple(f"app:{{emails}}:{suffix}" for suffix in KEY_SUFFIXES)
    for key in keys.all:
        tag = re.search(r"\{([^}]*)\}", key)  # Redis Cluster hashes the first {...} only
        assert tag is not None
        assert tag.group(1) == "emails"


def test_every_key_of_a_queue_lives_in_one_cluster_slot() -> None:
    for queue in ("default", "emails", "a.b-c_d"):
        keys = QueueKeys("errands", queue)
        named = (keys.wake, keys.cfg, keys.result_channel("job1"))
        slots = {key_slot(key.encode()) for key in keys.all + named}
        assert slots == {key_slot(queue.encode())}


def test_a_namespace_with_a_colon_keeps_the_queue_tag() -> None:
    keys = QueueKeys("tenant:42", "emails")
    assert {key_slot(key.encode()) for key in keys.all} == {key_slot(b"emails")}


def test_the_key_order_is_the_one_the_lua_header_documents() -> None:
    kinds = "ZSET|HASH|STRING|SET|STREAM"
    documented = re.findall(rf"^--\s+(\d+) (\w+)\s+(?:{kinds})\b", shared_lua(), re.M)
    assert documented, "the KEYS layout comment of 00_shared.lua was not found"
    assert [int(index) for index, _ in documented] == list(range(1, len(documented) + 1))
    assert tuple(name for _, name in documented) == KEY_SUFFIXES


def test_the_key_order_is_the_one_the_lua_key_table_reads() -> None:
    table = re.findall(r"(\w+) = KEYS\[(\d+)\]", shared_lua())
    assert sorted((int(index), name) for name, index in table) == list(
        enumerate(KEY_SUFFIXES, start=1)
    )


def test_the_named_keys_are_the_ones_in_the_list() -> None:
    keys = QueueKeys("ns", "q")
    assert keys.wake in keys.all
    assert keys.cfg in keys.all
    assert keys.result_channel("abc") == "ns:{q}:done:abc"
    assert queues_registry_key("ns") == "ns:queues"


@pytest.mark.parametrize("name", ["default", "emails", "high.priority-1_x", "Q", "x" * 100])
def test_a_good_queue_name_is_accepted(name: str) -> None:
    assert check_queue_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a b", "{emails}", "emails}", "a:b", "a/b", "tab\t", "é", "x" * 101, "*"],
)
def test_a_queue_name_that_could_break_a_key_or_a_shell_is_refused(name: str) -> None:
    expected = f"queue name {name!r} is not allowed: use 1-100 letters, digits, '_', '-' or '.'"
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        check_queue_name(name)


def test_a_queue_name_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="queue name 7 is not allowed"):
        check_queue_name(7)  # type: ignore[arg-type]


def test_the_broker_refuses_a_bad_queue_name_before_any_io() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError, match="queue name 'a b' is not allowed"):
        broker.keys("a b")
