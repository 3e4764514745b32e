"""Workflows: chain, group and chord, so that no task ever waits for another.

A chain runs steps one after another; a group runs jobs in parallel; a chord runs a group, then
a callback with every result.

A chain's next step is enqueued by the worker when a step succeeds, before that step is
acknowledged, under a job id derived from the step's own: a step that runs twice (at-least-once)
still enqueues its successor once. A chord's members each report their result to the chord,
kept in Redis beside the callback; the last report enqueues the callback in the same atomic
step, and a member that fails for good fails the chord. So a task never waits for another.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from errands.errors import BrokerError, ConfigurationError, ResultTimeoutError
from errands.message import Link
from errands.result import AsyncResult, seconds
from errands.task import Signature, build_job

if TYPE_CHECKING:
    from errands.app import App

__all__ = [
    "Chain",
    "ChainResult",
    "Chord",
    "ChordResult",
    "Group",
    "GroupResult",
    "chain",
    "chord",
    "group",
    "next_job_id",
]

R = TypeVar("R")


def next_job_id(parent_id: str) -> str:
    """The id of the chain step that follows job `parent_id` (the same on every re-run)."""
    return hashlib.sha1(f"{parent_id}:next".encode(), usedforsecurity=False).hexdigest()[:32]


def _remaining(deadline: float, timeout: float | timedelta) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ResultTimeoutError(f"the workflow did not finish within {seconds(timeout):g}s")
    return left


class ChainResult(Generic[R]):
    """Handles on every step of a chain; `get()` returns the last step's result."""

    def __init__(self, steps: Sequence[AsyncResult[Any]]) -> None:
        self.steps = list(steps)

    @property
    def id(self) -> str:
        """The id of the last step."""
        return self.steps[-1].id

    def get(self, timeout: float | timedelta = 30.0) -> R:
        """Wait for every step in turn; a failed step raises its `JobFailed`. Outside tasks only."""
        deadline = time.monotonic() + seconds(timeout)
        value: Any = None
        for step in self.steps:
            value = step.get(timeout=_remaining(deadline, timeout))
        result: R = value
        return result

    async def aget(self, timeout: float | timedelta = 30.0) -> R:  # noqa: ASYNC109 - twin of get
        """Async twin of `get`."""
        deadline = time.monotonic() + seconds(timeout)
        value: Any = None
        for step in self.steps:
            value = await step.aget(timeout=_remaining(deadline, timeout))
        result: R = value
        return result


class Chain(Generic[R]):
    """Steps that run one after another; a `Task.partial` step gets the previous result first.

    Args:
        signatures: the steps, in order; the first gets only its own arguments.
    """

    def __init__(self, *signatures: Signature[Any]) -> None:
        if not signatures:
            raise ConfigurationError("a chain needs at least one step: chain(a.s(...), ...)")
        if signatures[0].partial:
            raise ConfigurationError(
                f"the first step of a chain has no previous result: use "
                f"{signatures[0].task.name}.s(...), not .partial(...)"
            )
        apps = {id(s.task.app) for s in signatures}
        if len(apps) != 1:
            raise ConfigurationError("every step of a chain must belong to the same app")
        for index, signature in enumerate(signatures):
            signature.check(previous=index > 0)
        self.signatures = list(signatures)

    @property
    def app(self) -> App:
        """The app of the steps."""
        return self.signatures[0].task.app

    def __or__(self, other: Signature[Any]) -> Chain[Any]:
        return Chain(*self.signatures, other)

    def _prepare(self) -> tuple[str, Any]:
        first, rest = self.signatures[0], self.signatures[1:]
        return build_job(
            first.task.options,
            first.args,
            first.kwargs,
            first.options,
            self.app.max_payload_bytes,
            links=[step.to_link() for step in rest],
        )

    def _result(self, first_id: str, first_queue: str) -> ChainResult[R]:
        steps: list[AsyncResult[Any]] = [AsyncResult(self.app, first_id, first_queue)]
        for step in self.signatures[1:]:
            queue = step.options.queue or step.task.options.queue
            steps.append(AsyncResult(self.app, next_job_id(steps[-1].id), queue))
        return ChainResult(steps)

    def delay(self) -> ChainResult[R]:
        """Send the first step; the worker sends each next one when the previous succeeds."""
        queue, job = self._prepare()
        done = self.app.send(queue, [job])[0]
        return self._result(done.id, queue)

    async def adelay(self) -> ChainResult[R]:
        """Async twin of `delay`."""
        queue, job = self._prepare()
        done = (await self.app.asend(queue, [job]))[0]
        return self._result(done.id, queue)


def chain(*signatures: Signature[Any]) -> Chain[Any]:
    """Run `signatures` one after another: ``chain(fetch.s(url), parse.partial())``."""
    return Chain(*signatures)


class GroupResult(Generic[R]):
    """Handles on every member of a group; `get()` returns their results in order."""

    def __init__(self, results: Sequence[AsyncResult[R]]) -> None:
        self.results = list(results)

    def get(self, timeout: float | timedelta = 30.0) -> list[R]:
        """Wait for every member (a failed one raises its `JobFailed`); outside tasks only."""
        deadline = time.monotonic() + seconds(timeout)
        return [r.get(timeout=_remaining(deadline, timeout)) for r in self.results]

    async def aget(self, timeout: float | timedelta = 30.0) -> list[R]:  # noqa: ASYNC109
        """Async twin of `get`."""
        deadline = time.monotonic() + seconds(timeout)
        return [await r.aget(timeout=_remaining(deadline, timeout)) for r in self.results]


class Group(Generic[R]):
    """Jobs that run in parallel, sent in one broker call per queue.

    Args:
        signatures: the members (full signatures: `Task.s`).
    """

    def __init__(self, *signatures: Signature[R]) -> None:
        if any(s.partial for s in signatures):
            raise ConfigurationError(
                "a group member has no previous result: use .s(), not .partial()"
            )
        self.signatures = list(signatures)

    def delay(self) -> GroupResult[R]:
        """Send every member at once."""
        if not self.signatures:
            return GroupResult([])
        app = self.signatures[0].task.app
        return GroupResult(app.enqueue_many(self.signatures))


def group(*signatures: Signature[R]) -> Group[R]:
    """Run `signatures` in parallel: ``group(resize.s(i) for i in ...)`` needs a star."""
    return Group(*signatures)


class ChordResult(Generic[R]):
    """The callback's handle (`get()` waits for it) and the members' (`members`)."""

    def __init__(self, callback: AsyncResult[R], members: GroupResult[Any]) -> None:
        self.callback = callback
        self.members = members

    @property
    def id(self) -> str:
        """The chord's id: the callback's job id."""
        return self.callback.id

    def get(self, timeout: float | timedelta = 30.0) -> R:
        """Wait for the callback's result; `JobFailed` names a member that failed. Outside tasks."""
        return self.callback.get(timeout=timeout)

    async def aget(self, timeout: float | timedelta = 30.0) -> R:  # noqa: ASYNC109 - twin of get
        """Async twin of `get`."""
        return await self.callback.aget(timeout=timeout)


class Chord(Generic[R]):
    """A group whose results, in member order, go to one callback once all have succeeded.

    Args:
        members: the group's signatures (full: `Task.s`), or a `Group`.
        callback: a `Task.partial` signature receives the list of results first; a `Task.s`
            one runs with only its own arguments.
    """

    def __init__(self, members: Group[Any] | Sequence[Signature[Any]], callback: Signature[R]):
        signatures = members.signatures if isinstance(members, Group) else list(members)
        if not signatures:
            raise ConfigurationError("a chord needs at least one member: chord([a.s(), ...], cb)")
        if any(s.partial for s in signatures):
            raise ConfigurationError("a chord member has no previous result: use .s()")
        for signature in signatures:
            signature.check()
        callback.check(previous=True)
        self.members = signatures
        self.callback = callback

    def _prepare(self) -> tuple[str, str, Any, bytes, dict[str, list[Any]]]:
        app = self.callback.task.app
        callback = self.callback
        chord_id = callback.options.job_id or os.urandom(16).hex()
        marker = f"__errands_chord_results_{chord_id}__"
        args = (marker, *callback.args) if callback.partial else callback.args
        options = replace(callback.options, job_id=chord_id, countdown=None, eta=None)
        queue, job = build_job(
            callback.task.options, args, callback.kwargs, options, app.max_payload_bytes
        )
        by_queue: dict[str, list[Any]] = {}
        for index, member in enumerate(self.members):
            member_queue, member_job = build_job(
                member.task.options,
                member.args,
                member.kwargs,
                member.options,
                app.max_payload_bytes,
                links=[Link(chord=chord_id, index=index, queue=queue)],
            )
            by_queue.setdefault(member_queue, []).append((index, member_job))
        return chord_id, queue, job, msgspec.json.encode(marker), by_queue

    def _result(
        self, chord_id: str, queue: str, placed: dict[int, tuple[str, str]]
    ) -> ChordResult[R]:
        app = self.callback.task.app
        members = [AsyncResult[Any](app, *placed[i]) for i in range(len(self.members))]
        return ChordResult(AsyncResult(app, chord_id, queue), GroupResult(members))

    def delay(self) -> ChordResult[R]:
        """Record the chord, send its members (any number, in calls of a few hundred), arm it.

        Raises:
            BrokerError: a call was refused. The chord is not armed: it fails by itself once
                `BrokerSettings.chord_send_ms` (10 minutes) has passed, its callback's result
                saying that its members were not all sent; `error.enqueued` lists the members
                that were, which run as jobs of their own. Send the chord again.
        """
        chord_id, queue, job, marker, by_queue = self._prepare()
        app = self.callback.task.app
        app.broker.chord_start(queue, chord_id, len(self.members), app.outgoing(queue, job), marker)
        placed: dict[int, tuple[str, str]] = {}
        for member_queue, items in by_queue.items():
            try:
                done = app.send(member_queue, [member_job for _, member_job in items])
            except BrokerError as error:
                raise self._unsent(error, placed, member_queue) from None
            for (index, _), answer in zip(items, done, strict=True):
                placed[index] = (answer.id, member_queue)
        app.broker.chord_arm(queue, chord_id)
        return self._result(chord_id, queue, placed)

    async def adelay(self) -> ChordResult[R]:
        """Async twin of `delay`."""
        chord_id, queue, job, marker, by_queue = self._prepare()
        app = self.callback.task.app
        callback = app.outgoing(queue, job)
        await app.broker.achord_start(queue, chord_id, len(self.members), callback, marker)
        placed: dict[int, tuple[str, str]] = {}
        for member_queue, items in by_queue.items():
            try:
                done = await app.asend(member_queue, [member_job for _, member_job in items])
            except BrokerError as error:
                raise self._unsent(error, placed, member_queue) from None
            for (index, _), answer in zip(items, done, strict=True):
                placed[index] = (answer.id, member_queue)
        await app.broker.achord_arm(queue, chord_id)
        return self._result(chord_id, queue, placed)

    def _unsent(
        self, error: BrokerError, placed: dict[int, tuple[str, str]], queue: str
    ) -> BrokerError:
        """`error`, saying what became of a chord sent halfway (`queue` refused members)."""
        app = self.callback.task.app
        sent = [AsyncResult[Any](app, job_id, q) for job_id, q in placed.values()]
        sent += [AsyncResult[Any](app, answer.id, queue) for answer in error.enqueued]
        minutes = app.broker.settings.chord_send_ms / 60_000
        refused = type(error)(
            f"{error} -- the chord was sent halfway ({len(sent)} of {len(self.members)} "
            f"members enqueued, in error.enqueued): its callback will not run, and the chord "
            f"fails by itself within {minutes:g} minutes; send it again"
        )
        refused.enqueued = sent
        return refused


def chord(members: Group[Any] | Sequence[Signature[Any]], callback: Signature[R]) -> Chord[R]:
    """Run `members` in parallel, then `callback` with their results: no task waits."""
    return Chord(members, callback)
