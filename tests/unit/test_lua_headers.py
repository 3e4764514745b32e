"""The header of each Lua file names exactly the keys its functions read and write (no Redis).

Every function receives all 22 keys of a queue; its header lists the ones it touches, with the
helpers it calls, as ``KEYS[n] suffix (read, write)``, and says when it publishes on the result
channel. `lua_keys` reads the code to find out what each function does; these tests compare.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import pytest

from errands.broker.redis.alerts import ALERT_SUFFIXES
from errands.broker.redis.budget import BUDGET_SUFFIXES
from errands.broker.redis.keys import KEY_SUFFIXES
from errands.broker.redis.library import LUA_FILES
from errands.broker.redis.schedules import BEAT_SUFFIXES
from errands.broker.redis.series import SERIES_SUFFIXES
from tests.unit.lua_keys import (
    Effects,
    Function,
    LuaError,
    declared_effects,
    functions_of,
    registered,
    touched,
)

# The helper files, loaded first (their names start with a digit); they register nothing.
_SHARED = tuple(name for name in LUA_FILES if name[0].isdigit())
# The scheduler's functions take the scheduler's keys, not a queue's (tested on their own below);
# so do the alert evaluator's and the throughput series'.
_BEAT = "schedule.lua"
_ALERTS = "alerts.lua"
_SERIES = "series.lua"
_BUDGET = "budget.lua"  # the HTTP API's budgets per token
_OWN_KEYS = {
    _SERIES: ("series_keys", "S", SERIES_SUFFIXES),
    _BUDGET: ("budget_keys", "B", BUDGET_SUFFIXES),
}
_FILES = [name for name in LUA_FILES if name not in (*_SHARED, _BEAT, _ALERTS, *_OWN_KEYS)]


def _source(name: str) -> str:
    return (resources.files("errands.broker.redis") / "lua" / name).read_text("utf-8")


@cache
def _shared() -> dict[str, Function]:
    found: dict[str, Function] = {}
    for name in _SHARED:
        functions, _ = functions_of(_source(name), name)
        found.update(functions)
    return found


def _described(effects: Effects) -> list[str]:
    """The header lines `effects` stand for, in KEYS order, plus the channel."""
    lines = [
        f"KEYS[{KEY_SUFFIXES.index(suffix) + 1}] {suffix} ({', '.join(sorted(modes))})"
        for suffix, modes in sorted(effects.keys.items(), key=lambda kv: KEY_SUFFIXES.index(kv[0]))
    ]
    return [*lines, "publishes on the result channel"] if effects.publishes else lines


def _mismatches(name: str, source: str) -> list[str]:
    """What the header of `source` gets wrong about its code, one line per function."""
    own, outside = functions_of(source, name)
    functions = {**_shared(), **own}
    operations = registered(source)
    declared = declared_effects(source)
    wrong = [
        f"errands_v1_{op}: a section, not registered" for op in declared if op not in operations
    ]
    memo: dict[str, Effects] = {}
    by_callback: dict[str, list[str]] = {}
    for operation, callback in operations.items():
        by_callback.setdefault(callback, []).append(operation)
    for callback, ops in by_callback.items():
        code = touched(callback, functions, memo)
        header = Effects()
        for op in ops:
            for suffix, modes in declared.get(op, Effects()).keys.items():
                header.merge_keys(suffix, modes)
            header.publishes |= declared.get(op, Effects()).publishes
        if _described(code) != _described(header):
            wrong.append(
                f"errands_v1_{'/'.join(ops)}: the code does {_described(code)}, "
                f"the header says {_described(header)}"
            )
    if any(t.text in {"KEYS", "K"} for t in outside):
        wrong.append("keys used outside any function")
    return wrong


@pytest.mark.parametrize("name", _FILES)
def test_each_lua_header_names_exactly_the_keys_its_functions_read_and_write(name: str) -> None:
    assert _mismatches(name, _source(name)) == []


def test_every_lua_file_of_the_library_registers_a_function() -> None:
    folder = resources.files("errands.broker.redis") / "lua"
    on_disk = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".lua"))
    assert sorted(LUA_FILES) == on_disk
    for name in _SHARED:
        assert registered(_source(name)) == {}
    for name in [*_FILES, _BEAT, _ALERTS, *_OWN_KEYS]:
        assert registered(_source(name)), name


def test_the_scheduler_functions_name_their_keys_in_the_order_the_client_sends_them() -> None:
    source = _source(_BEAT)
    for index, suffix in enumerate(BEAT_SUFFIXES, 1):
        assert f"--   KEYS[{index}] {suffix} " in source, suffix
    table = re.search(r"local function beat_keys\(KEYS\)(.*?)\nend", source, re.S)
    assert table is not None
    named = re.findall(r"(\w+) = KEYS\[(\d+)\]", table.group(1))
    assert named == [(suffix, str(i)) for i, suffix in enumerate(BEAT_SUFFIXES, 1)]
    used = set(re.findall(r"\bB\.(\w+)", source))
    assert used <= set(BEAT_SUFFIXES), used - set(BEAT_SUFFIXES)


def test_the_alert_functions_name_their_keys_in_the_order_the_client_sends_them() -> None:
    source = _source(_ALERTS)
    for index, suffix in enumerate(ALERT_SUFFIXES, 1):
        assert f"--   KEYS[{index}] {suffix} " in source, suffix
    table = re.search(r"local function alert_keys\(KEYS\)(.*?)\nend", source, re.S)
    assert table is not None
    named = re.findall(r"(\w+) = KEYS\[(\d+)\]", table.group(1))
    assert named == [(suffix, str(i)) for i, suffix in enumerate(ALERT_SUFFIXES, 1)]
    used = set(re.findall(r"\bA\.(\w+)", source))
    assert used <= set(ALERT_SUFFIXES), used - set(ALERT_SUFFIXES)
    # The lease is the scheduler's, whose KEYS[1] and KEYS[2] are the same two keys.
    assert BEAT_SUFFIXES[:2] == ALERT_SUFFIXES[:2]


@pytest.mark.parametrize("name", sorted(_OWN_KEYS))
def test_the_functions_with_keys_of_their_own_name_them_in_the_order_the_client_sends_them(
    name: str,
) -> None:
    source = _source(name)
    table_name, alias, suffixes = _OWN_KEYS[name]
    for index, suffix in enumerate(suffixes, 1):
        assert f"--   KEYS[{index}] {suffix} " in source, suffix
    table = re.search(rf"local function {table_name}\(KEYS\)(.*?)\nend", source, re.S)
    assert table is not None
    named = re.findall(r"(\w+) = KEYS\[(\d+)\]", table.group(1))
    assert named == [(suffix, str(i)) for i, suffix in enumerate(suffixes, 1)]
    used = set(re.findall(rf"\b{alias}\.(\w+)", source))
    assert used <= set(suffixes), used - set(suffixes)


def _without_line(source: str, line: str) -> str:
    assert source.count(line + "\n") == 1, line
    return source.replace(line + "\n", "")


def test_a_header_that_forgets_a_key_fails() -> None:
    source = _without_line(_source("ack.lua"), "--   KEYS[14] cancel (read, write)")
    [wrong] = _mismatches("ack.lua", source)
    assert "KEYS[14] cancel (read, write)" in wrong.split("the header says")[0]
    assert "KEYS[14]" not in wrong.split("the header says")[1]


def test_a_key_that_only_a_shared_helper_touches_counts() -> None:
    # redrive reaches seq only through ready_score (00_shared.lua).
    assert "K.seq" not in _source("redrive.lua")
    source = _without_line(_source("redrive.lua"), "--   KEYS[12] seq (read, write)")
    assert len(_mismatches("redrive.lua", source)) == 1


def test_a_header_that_marks_a_write_as_a_read_fails() -> None:
    source = _source("heartbeat.lua").replace("KEYS[3] active (write)", "KEYS[3] active (read)")
    assert len(_mismatches("heartbeat.lua", source)) == 1


def test_a_header_that_forgets_the_result_channel_fails() -> None:
    source = _source("cancel.lua").replace("(published to)", "")
    assert len(_mismatches("cancel.lua", source)) == 1


def test_a_header_key_named_at_the_wrong_index_is_refused() -> None:
    source = _source("purge.lua").replace("KEYS[4] dead", "KEYS[3] dead")
    with pytest.raises(LuaError, match=r"KEYS\[3\] is not dead"):
        _mismatches("purge.lua", source)


def test_a_key_used_in_a_way_the_reader_cannot_follow_is_an_error() -> None:
    # A key chosen by an expression: the reader cannot tell which one, so it refuses to guess.
    source = _source("purge.lua").replace(
        "redis.call('HDEL', K.jobs, id)", "redis.call('HDEL', limit > 0 and K.jobs or K.meta, id)"
    )
    with pytest.raises(LuaError, match="cannot tell which key"):
        _mismatches("purge.lua", source)


def _touched(source: str) -> dict[str, set[str]]:
    functions, _ = functions_of(source, "probe.lua")
    return touched("f", {**_shared(), **functions}, {}).keys


def test_a_key_held_in_a_local_alias_counts_as_that_key() -> None:
    source = """
local function f(KEYS, ARGV)
  local dead = KEYS[4]
  redis.call('ZADD', dead, 0, ARGV[1])
end
"""
    assert _touched(source) == {"dead": {"write"}}


def test_a_write_whose_reply_the_code_uses_reads_the_key_too() -> None:
    source = """
local function f(KEYS, ARGV)
  local K = key_table(KEYS)
  redis.call('HDEL', K.jobs, ARGV[1])
  if redis.call('ZREM', K.dead, ARGV[1]) == 1 then redis.call('INCR', K.seq) end
  return {redis.call('INCR', K.stats)}
end
"""
    assert _touched(source) == {
        "jobs": {"write"},
        "dead": {"read", "write"},
        "seq": {"write"},
        "stats": {"read", "write"},
    }


def test_a_key_passed_to_a_helper_takes_what_the_helper_does_with_it() -> None:
    # expire_some(hash, index, ...) reads and trims the index, and deletes from the hash.
    source = """
local function f(KEYS, ARGV)
  expire_some(KEYS[9], KEYS[10], 0, 1)
end
"""
    assert _touched(source) == {"idem": {"write"}, "idem_x": {"read", "write"}}
