"""The connections blocking calls keep per thread: reused, reopened, never shared."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ResponseError

from errands.broker.redis.direct import ThreadConnections


@pytest.fixture
def connections(client: redis.Redis) -> Iterator[ThreadConnections]:
    connections = ThreadConnections(client.connection_pool)
    yield connections
    connections.close()


def test_calls_on_one_thread_share_one_connection(connections: ThreadConnections) -> None:
    first = connections.call(("CLIENT", "ID"))
    assert connections.call(("CLIENT", "ID")) == first


def test_each_thread_has_its_own_connection(connections: ThreadConnections) -> None:
    ids: list[int] = []
    threads = [
        threading.Thread(target=lambda: ids.append(connections.call(("CLIENT", "ID"))))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 3


def test_a_connection_the_server_closed_is_opened_again(
    connections: ThreadConnections, client: redis.Redis
) -> None:
    first = connections.call(("CLIENT", "ID"))
    client.client_kill_filter(_id=first)
    second = connections.call(("CLIENT", "ID"))
    assert second != first


def test_an_error_reply_is_raised_alone_and_kept_in_place_in_a_batch(
    connections: ThreadConnections, namespace: str
) -> None:
    with pytest.raises(ResponseError, match="wrong number of arguments"):
        connections.call(("GET",))
    (alone,) = connections.call_many([("GET",)])
    assert isinstance(alone, ResponseError)
    key = f"{namespace}:direct"
    replies = connections.call_many([("SET", key, 1), ("GET",), ("INCR", key)])
    assert replies[0] is True or replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError)
    assert replies[2] == 2
    connections.call(("DEL", key))


def test_a_forked_child_opens_its_own_connection(connections: ThreadConnections) -> None:
    parent_id = connections.call(("CLIENT", "ID"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, then leave without cleanup
        try:
            os.write(write, str(connections.call(("CLIENT", "ID"))).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id = int(os.read(read, 64))
    os.close(read)
    os.waitpid(pid, 0)
    assert child_id != parent_id
    assert connections.call(("CLIENT", "ID")) == parent_id  # the parent's still works
