"""`Subscriber`: a pub/sub connection kept between result waits (`get`, `aget`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Subscriber"]


@dataclass(slots=True)
class Subscriber:
    """A pub/sub connection kept for result waits, and the channel it still listens to.

    The last wait's channel is left subscribed, and dropped at the start of the next wait:
    no send between a result and its caller. A message still coming on it is skipped like
    any other that is not the one waited for.
    """

    pubsub: Any  # redis.client.PubSub, or its asyncio twin
    leftover: str | None = None

    def switch_to(self, channel: str) -> None:
        """Listen to `channel` instead of the last wait's."""
        if self.leftover is not None:
            self.pubsub.unsubscribe(self.leftover)
        self.leftover = channel
        self.pubsub.subscribe(channel)

    async def aswitch_to(self, channel: str) -> None:
        """Async twin of `switch_to`."""
        if self.leftover is not None:
            await self.pubsub.unsubscribe(self.leftover)
        self.leftover = channel
        await self.pubsub.subscribe(channel)
