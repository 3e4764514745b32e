"""A task called like a function says how to send it or run it, instead of a bare TypeError."""

from __future__ import annotations

import pytest

from errands import App
from errands.errors import ErrandsError, TaskCalledDirectly
from errands.testing import MemoryBroker


def test_calling_a_task_says_to_use_delay_or_fn_and_is_a_type_error() -> None:
    app = App(broker=MemoryBroker())

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError) as caught:
        add(1, 2)
    assert isinstance(caught.value, TaskCalledDirectly)
    assert isinstance(caught.value, ErrandsError)
    assert str(caught.value) == (
        "Task add is not a function: call add.delay(1, 2) (or .apply_async) to enqueue it, "
        "or add.fn(1, 2) to run it here"
    )
    assert add.fn(1, 2) == 3


def test_the_message_shows_keyword_arguments_and_shortens_long_ones() -> None:
    app = App(broker=MemoryBroker())

    @app.task(name="mail.send")
    def send(to: str, body: str = "") -> None: ...

    with pytest.raises(TaskCalledDirectly, match=r"send\.delay\('a@b\.c', body='hi'\)"):
        send("a@b.c", body="hi")
    with pytest.raises(TaskCalledDirectly, match=r"send\.fn\(\.\.\.\) to run it here"):
        send("x" * 100)
