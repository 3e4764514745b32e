"""Where alerts go: a JSON webhook and PagerDuty Events v2, each delivered by its own outbox.

A sink turns an incident's trigger or resolve into one HTTP request (`Sink.request`); an
`Outbox` sends a sink's requests in order, from a thread (`urllib.request`, no dependency), and
retries a request that failed (connection refused, a timeout, 429, 5xx) with capped backoff and
jitter, without ever holding up the evaluation that queued it. A request the receiver refuses
for good (another 4xx) is logged and dropped: sending it again would be refused again.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import random
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from errands.errors import ConfigurationError

if TYPE_CHECKING:
    from errands.observe.alerts import Incident

__all__ = [
    "PAGERDUTY_URL",
    "Action",
    "Outbox",
    "PagerDuty",
    "Request",
    "Sink",
    "Webhook",
]

log = logging.getLogger("errands.alerts")

#: Where PagerDuty's Events API v2 takes events.
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
#: What happens to an incident: it opens (trigger) or ends (resolve).
Action = Literal["trigger", "resolve"]
#: Backoff of a failing sink: the first pause, and the longest (seconds).
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


def _iso(at_s: float | None) -> str | None:
    return None if at_s is None else datetime.fromtimestamp(at_s, UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP POST of a JSON body."""

    url: str
    body: bytes
    headers: Mapping[str, str]


class Sink(Protocol):
    """Where an incident's trigger and resolve are sent."""

    #: Its name, unique among the app's sinks: incidents record what reached it by this name.
    name: str
    timeout_s: float

    def request(self, action: Action, incident: Incident, source: str) -> Request:
        """The request telling this sink that `incident` opened (trigger) or ended (resolve).

        `source`: who saw it (``errands@<host>``, PagerDuty's ``payload.source``).
        """
        ...


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{what}: the URL must be http:// or https://, not {url!r}")
    return url


class Webhook:
    """POST a JSON document to `url` on each trigger and resolve.

    The body: ``{"event": "trigger"|"resolve", "dedup_key", "rule", "subject", "severity",
    "summary", "source", "opened_at", "resolved_at" (ISO 8601, null while open), "count",
    "details"}``: ``dedup_key`` is the same for the trigger and the resolve of one incident.

    Args:
        url: where to POST.
        headers: extra headers (an ``Authorization`` token).
        name: its name among the app's sinks.
        timeout_s: how long one request may take.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        name: str = "webhook",
        timeout_s: float = 10.0,
    ) -> None:
        self.url = _check_url(url, "Webhook")
        self.headers = dict(headers or {})
        self.name = name
        self.timeout_s = timeout_s

    def request(self, action: Action, incident: Incident, source: str) -> Request:
        """See `Sink.request`."""
        body = {
            "event": action,
            "dedup_key": incident.dedup_key,
            "rule": incident.rule,
            "subject": incident.subject,
            "severity": incident.severity,
            "summary": incident.summary,
            "source": source,
            "opened_at": _iso(incident.opened_at),
            "resolved_at": _iso(incident.resolved_at),
            "count": incident.count,
            "details": incident.details,
        }
        headers = {"Content-Type": "application/json", **self.headers}
        return Request(self.url, json.dumps(body).encode(), headers)


class PagerDuty:
    """PagerDuty Events API v2: a trigger when an incident opens, a resolve when it ends.

    Both carry the incident's ``dedup_key``, so PagerDuty opens one incident and closes it.

    Args:
        routing_key: the integration key of the PagerDuty service.
        url: the Events API endpoint (a proxy, or a test's receiver).
        name: its name among the app's sinks.
        timeout_s: how long one request may take.
    """

    def __init__(
        self,
        routing_key: str,
        *,
        url: str = PAGERDUTY_URL,
        name: str = "pagerduty",
        timeout_s: float = 10.0,
    ) -> None:
        if not isinstance(routing_key, str) or not routing_key:
            raise ConfigurationError("PagerDuty: give the routing_key of the service's integration")
        self.routing_key = routing_key
        self.url = _check_url(url, "PagerDuty")
        self.name = name
        self.timeout_s = timeout_s

    def request(self, action: Action, incident: Incident, source: str) -> Request:
        """See `Sink.request`."""
        event: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": incident.dedup_key,
        }
        if action == "trigger":
            event["payload"] = {
                "summary": incident.summary[:1024],
                "source": source,
                "severity": incident.severity,
                "timestamp": _iso(incident.opened_at),
                "component": incident.subject,
                "group": incident.rule,
                "class": incident.rule,
                "custom_details": {**incident.details, "count": incident.count},
            }
        headers = {"Content-Type": "application/json"}
        return Request(self.url, json.dumps(event).encode(), headers)


class _Refused(Exception):
    """The receiver answered a 4xx other than 429: the request will never be taken."""


def post(request: Request, timeout_s: float) -> int:
    """Send `request` (blocking); its HTTP status. Raises OSError when it may be retried."""
    outgoing = urllib.request.Request(  # noqa: S310 - the URL was checked to be http(s)
        request.url, data=request.body, headers=dict(request.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout_s) as response:  # noqa: S310
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        if error.code == 429 or error.code >= 500:
            raise OSError(f"HTTP {error.code}") from error
        raise _Refused(f"HTTP {error.code}: {error.read(300).decode(errors='replace')}") from error
    except http.client.HTTPException as error:  # a reply that is not HTTP: try again later
        raise OSError(f"a broken reply ({error!r})") from error


@dataclass(frozen=True, slots=True)
class _Item:
    key: str
    action: Action
    request: Request


class Outbox:
    """The requests waiting for one sink, sent in order by one task (`run`).

    Args:
        sink: the sink.
        delivered: called with (sink name, incident key, action) once a request went through
            (or was refused for good: sending it again would not help).
        send: the blocking sender (tests give a fake one); `post` by default.
    """

    def __init__(
        self,
        sink: Sink,
        delivered: Callable[[str, str, Action], None],
        send: Callable[[Request, float], int] = post,
    ) -> None:
        self.sink = sink
        self._delivered = delivered
        self._send = send
        self._items: deque[_Item] = deque()
        self._queued: set[tuple[str, Action]] = set()
        self._wake = asyncio.Event()
        #: Sends that failed and were retried (a receiver down, a 5xx).
        self.failures = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, key: str, action: Action, request: Request) -> None:
        """Queue a request, unless the same (incident, action) is already waiting."""
        if (key, action) in self._queued:
            return
        self._queued.add((key, action))
        self._items.append(_Item(key, action, request))
        self._wake.set()

    def clear(self) -> None:
        """Drop everything waiting (the evaluator lost the lead: the new leader sends it)."""
        self._items.clear()
        self._queued.clear()

    async def run(self, stopping: asyncio.Event) -> None:
        """Send what is queued, in order, until `stopping` is set."""
        pause = RETRY_FIRST_S
        while not stopping.is_set():
            if not self._items:
                self._wake.clear()
                await _wait_either(self._wake, stopping, None)
                continue
            item = self._items[0]
            try:
                await asyncio.to_thread(self._send, item.request, self.sink.timeout_s)
            except _Refused as error:
                log.error(
                    "alert sink %s refused the %s of %s for good (%s); not sent again",
                    self.sink.name,
                    item.action,
                    item.key,
                    error,
                )
            except OSError as error:
                self.failures += 1
                log.warning(
                    "alert sink %s failed to take the %s of %s (%s); retrying in %.0fs",
                    self.sink.name,
                    item.action,
                    item.key,
                    error,
                    pause,
                )
                await _wait_either(stopping, None, pause * (0.5 + random.random() / 2))
                pause = min(pause * 2, RETRY_MAX_S)
                continue
            pause = RETRY_FIRST_S
            if self._items and self._items[0] is item:  # not cleared meanwhile
                self._items.popleft()
                self._queued.discard((item.key, item.action))
                self._delivered(self.sink.name, item.key, item.action)


async def _wait_either(
    first: asyncio.Event, second: asyncio.Event | None, timeout_s: float | None
) -> None:
    waits = [asyncio.ensure_future(first.wait())]
    if second is not None:
        waits.append(asyncio.ensure_future(second.wait()))
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await w
