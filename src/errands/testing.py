"""Helpers to test code that uses errands, with no Redis server.

Give your app an in-memory broker; it keeps the exact semantics of the Redis one (priorities,
delays, leases, retries, idempotency, results), and its clock can be moved by hand::

    from errands import App
    from errands.testing import MemoryBroker

    app = App(broker=MemoryBroker())

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(1, 2)
    assert result.state == "queued"

To test delays without sleeping, pass a clock (seconds, like `time.time`) you move yourself:
``MemoryBroker(clock=lambda: now[0])``.
"""

from errands.broker.memory import MemoryBroker

__all__ = ["MemoryBroker"]
