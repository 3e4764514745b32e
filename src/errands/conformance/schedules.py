"""Checks of the schedule store: the leader lease and its fence, fire state, definitions, pauses."""

from __future__ import annotations

import json

from errands.conformance.subject import LONG_MS, SHORT_MS, Check, Subject


async def check_one_owner_leads_and_renews_under_the_same_fence(s: Subject) -> None:
    """The first owner takes the lease; it renews under its fence; another waits."""
    store = s.broker.schedules
    fence, left = await store.lead("a", LONG_MS)
    assert fence > 0, f"the first owner should lead: fence {fence}"
    assert left == LONG_MS, f"a new lease should last its length: {left}"
    again, _ = await store.lead("a", LONG_MS)
    assert again == fence, f"a renewal keeps the fence: {again}, not {fence}"
    other, other_left = await store.lead("b", LONG_MS)
    assert other == 0, f"another owner should not lead while the lease holds: {other}"
    assert 0 < other_left <= LONG_MS, f"it should learn how long the lease holds: {other_left}"


async def check_an_expired_lease_goes_to_the_next_owner_under_a_new_fence(s: Subject) -> None:
    """An expired lease goes to another owner, with a higher fence; the old one writes nothing."""
    store = s.broker.schedules
    old, _ = await store.lead("a", SHORT_MS)
    s.elapse(SHORT_MS)
    new, _ = await store.lead("b", LONG_MS)
    assert new > old, f"the next leader should get a higher fence: {new}, not above {old}"
    assert not await store.advance("a", old, [("x", b'{"since_ms": 1}')]), (
        "the old leader's fence should not write"
    )
    assert await store.advance("b", new, [("x", b'{"since_ms": 2}')]), "the leader should write"
    assert s.broker.schedules.read().state == {"x": b'{"since_ms": 2}'}
    back, _ = await store.lead("a", LONG_MS)
    assert back == 0, "the old leader should not take the lease back while it holds"


async def check_a_resigned_lease_is_free_at_once(s: Subject) -> None:
    """A leader that resigns frees the lease; resigning under a stale fence frees nothing."""
    store = s.broker.schedules
    fence, _ = await store.lead("a", LONG_MS)
    assert not await store.resign("a", fence + 1), "a stale fence should not resign"
    assert await store.resign("a", fence), "the leader should resign"
    taken, _ = await store.lead("b", LONG_MS)
    assert taken > fence, f"the lease should be free for another owner: {taken}"


async def check_code_never_replaces_an_operators_schedule(s: Subject) -> None:
    """`define` creates, replaces, keeps what is the same; code keeps an operator's schedule."""
    store = s.broker.schedules
    mine = json.dumps({"id": "a", "origin": "operator"}).encode()
    answers = store.define("operator", [("a", mine), ("b", b'{"id": "b"}')])
    assert answers == ["created", "created"], f"two new schedules: {answers}"
    version = s.broker.schedules.read().version
    answers = await store.adefine("code", [("a", b'{"id": "a"}'), ("b", b'{"id": "b"}')])
    assert answers == ["kept", "same"], f"code over an operator's, then the same: {answers}"
    assert s.broker.schedules.read().version == version, "nothing changed: the same version"
    assert store.define("code", [("b", b'{"id": "b", "x": 1}')]) == ["replaced"]
    snapshot = store.read()
    assert snapshot.defs == {"a": mine, "b": b'{"id": "b", "x": 1}'}, f"stored: {snapshot.defs}"
    assert snapshot.version > version, "a replacement bumps the version"


async def check_pauses_and_removals_change_the_version_and_need_a_schedule(s: Subject) -> None:
    """Pause, resume and remove act on existing schedules only, each bumping the version."""
    store = s.broker.schedules
    assert not store.pause("nope", "pause"), "no schedule: nothing to pause"
    store.define(
        "code", [("a", b'{"id": "a"}'), ("b", json.dumps({"origin": "operator"}).encode())]
    )
    before = store.read().version
    assert await store.apause("a", "pause", "why"), "a schedule should pause"
    paused = json.loads(store.read().pauses["a"])
    assert (paused["paused"], paused["note"]) == (True, "why"), f"the pause: {paused}"
    assert store.pause("a", "resume_now"), "a schedule should resume from now"
    resumed = json.loads(store.read().pauses["a"])
    assert resumed["paused"] is False, f"resumed: {resumed}"
    assert resumed["from"] > 0, f"resumed from now: {resumed}"
    assert store.pause("a", "resume_last"), "a schedule should resume from its last fire"
    assert "a" not in store.read().pauses, "resuming from the last fire leaves no pause"
    assert store.read().version == before + 3, "each change bumps the version"
    assert store.remove(["a", "b"], only="code") == 1, "only the code schedule goes"
    assert await store.aremove(["b", "gone"]) == 1, "any origin goes without `only`"
    assert store.read().defs == {}, "nothing is left"


CHECKS: tuple[Check, ...] = (
    check_one_owner_leads_and_renews_under_the_same_fence,
    check_an_expired_lease_goes_to_the_next_owner_under_a_new_fence,
    check_a_resigned_lease_is_free_at_once,
    check_code_never_replaces_an_operators_schedule,
    check_pauses_and_removals_change_the_version_and_need_a_schedule,
)
