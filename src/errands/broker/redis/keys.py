"""Every Redis key name errands uses, in one place.

A queue's keys share the hash tag ``{queue}`` so that each Redis Function call touches a single
Cluster slot: ``<namespace>:{<queue>}:<suffix>``. The Lua functions never build a key name; they
receive this list, in this order, as KEYS (see lua/00_shared.lua).
"""

from __future__ import annotations

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
    "chord_fails",
    "history",
    "limits",
    "limits_x",
    "limit_wait",
    "progress",
    "events",
)


def queues_registry_key(namespace: str) -> str:
    """The SET of queue names producers and workers have used (for `errands queues`)."""
    return f"{namespace}:queues"


class QueueKeys:
    """The keys of one queue, and the prefix of the channels its results are published on.

    Built once per queue (every name computed up front: they go out with every call).

    Args:
        namespace: the app's namespace.
        queue: the queue name.
    """

    __slots__ = ("all", "cfg", "namespace", "prefix", "queue", "result_channel_prefix", "wake")

    def __init__(self, namespace: str, queue: str) -> None:
        self.namespace = namespace
        self.queue = queue
        #: The common prefix, with the hash tag: ``errands:{default}:``.
        self.prefix = f"{namespace}:{{{queue}}}:"
        #: Every key of the queue, in KEYS order.
        self.all: tuple[str, ...] = tuple(self.prefix + suffix for suffix in KEY_SUFFIXES)
        #: The ZSET idle workers block on.
        self.wake = self.prefix + "wake"
        #: The HASH of queue settings (paused).
        self.cfg = self.prefix + "cfg"
        #: Channel names for finished jobs are this prefix plus the job id.
        self.result_channel_prefix = self.prefix + "done:"

    def __repr__(self) -> str:
        return f"QueueKeys({self.namespace!r}, {self.queue!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QueueKeys) and (other.namespace, other.queue) == (
            self.namespace,
            self.queue,
        )

    def __hash__(self) -> int:
        return hash((self.namespace, self.queue))

    def result_channel(self, job_id: str) -> str:
        """The channel the ack of `job_id` publishes its outcome on."""
        return self.result_channel_prefix + job_id
