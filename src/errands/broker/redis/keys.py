"""Every Redis key name errands uses, in one place.

A queue's keys share the hash tag ``{queue}`` so that each Redis Function call touches a single
Cluster slot: ``<namespace>:{<queue>}:<suffix>``. The Lua functions never build a key name; they
receive this list, in this order, as KEYS (see lua/00_shared.lua).
"""

from __future__ import annotations

from dataclasses import dataclass

from errands.broker.names import check_queue_name

__all__ = ["KEY_SUFFIXES", "QueueKeys", "check_queue_name", "queues_registry_key"]

#: The order of KEYS passed to every function of the library.
KEY_SUFFIXES: tuple[str, ...] = (
    "ready",
    "delayed",
    "active",
    "dead",
    "jobs",
    "meta",
    "results",
    "results_x",
    "idem",
    "idem_x",
    "wake",
    "seq",
    "stats",
    "cancel",
    "workers",
    "maint",
    "cfg",
    "chords",
    "chord_parts",
    "chords_x",
)


def queues_registry_key(namespace: str) -> str:
    """The SET of queue names producers and workers have used (for `errands queues`)."""
    return f"{namespace}:queues"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one queue, and the prefix of the channels its results are published on."""

    namespace: str
    queue: str

    @property
    def prefix(self) -> str:
        """The common prefix, with the hash tag: ``errands:{default}:``."""
        return f"{self.namespace}:{{{self.queue}}}:"

    @property
    def all(self) -> tuple[str, ...]:
        """Every key of the queue, in KEYS order."""
        prefix = self.prefix
        return tuple(prefix + suffix for suffix in KEY_SUFFIXES)

    @property
    def wake(self) -> str:
        """The ZSET idle workers block on."""
        return self.prefix + "wake"

    @property
    def cfg(self) -> str:
        """The HASH of queue settings (paused)."""
        return self.prefix + "cfg"

    @property
    def result_channel_prefix(self) -> str:
        """Channel names for finished jobs are this prefix plus the job id."""
        return self.prefix + "done:"

    def result_channel(self, job_id: str) -> str:
        """The channel the ack of `job_id` publishes its outcome on."""
        return self.result_channel_prefix + job_id
