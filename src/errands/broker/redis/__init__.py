"""The Redis broker: one Redis Functions library, every state change one FCALL."""

from errands.broker.redis.broker import RedisBroker

__all__ = ["RedisBroker"]
