"""Code that must type-check: what mypy infers for tasks, calls, signatures and results.

Checked by the project-wide `mypy` run and by tests/unit/test_typing.py. The calls sit inside
functions that nobody calls, so importing this module does no I/O.
"""

from __future__ import annotations

from typing import assert_type

from errands import App, AsyncResult, Signature, TaskContext

app = App("redis://127.0.0.1:1/0")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(queue="emails", priority=5, max_retries=2)
def send(to: str, subject: str = "hello") -> bool:
    return bool(to and subject)


@app.task(bind=True)
def bound(ctx: TaskContext, user_id: int) -> str:
    return f"{ctx.id}:{user_id}"


@app.task
async def fetch(url: str, *, retries: int = 0) -> bytes:
    return url.encode() * (retries + 1)


def producer_calls() -> None:
    assert_type(add.delay(1, 2), AsyncResult[int])
    assert_type(add.delay(1, y=2).get(), int)
    assert_type(add.apply_async((1, 2), countdown=5), AsyncResult[int])
    assert_type(add.s(1, 2), Signature[int])
    assert_type(add.s(1, 2).delay().get(timeout=5), int)
    assert_type(send.delay("a@b.c"), AsyncResult[bool])
    assert_type(send.delay("a@b.c", subject="hi").get(), bool)
    assert_type(bound.delay(42), AsyncResult[str])  # the context is the worker's to pass
    assert_type(bound.s(42), Signature[str])
    assert_type(fetch.delay("https://example.org", retries=2).get(), bytes)
    results: list[AsyncResult[int]] = app.enqueue_many([add.s(1, 2), add.s(3, 4)])
    assert_type(results[0].get(), int)


async def async_producer_calls() -> None:
    result = await add.adelay(1, 2)
    assert_type(result, AsyncResult[int])
    assert_type(await result.aget(), int)
    assert_type(await (await fetch.adelay("u")).aget(), bytes)
    assert_type(await add.s(1, 2).adelay(), AsyncResult[int])
