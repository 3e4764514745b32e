"""Every error Redis (or the road to it) can give, turned into one errands error, in one place.

A worker retries what passes and stops on the rest; a producer gets an errands error either way,
never a redis-py exception. What passes (`BrokerUnavailable`): no connection, a timeout, a
connection dropped by a failover, LOADING, READONLY and UNBLOCKED (a replica, as during a
failover), BUSY (a long script), MASTERDOWN, NOREPLICAS, TRYAGAIN, CLUSTERDOWN, MISCONF (a
snapshot that cannot be written), and OOM (`BrokerFull`). What does not
(`BrokerError`): a server that does not speak Redis, a refused login or command, a server without
Functions (`BrokerTooOld`), and any other error reply, which names the call it came from.
"""

from __future__ import annotations

from redis import exceptions as rex

from errands.broker.urls import redact
from errands.errors import BrokerError, BrokerFull, BrokerTooOld, BrokerUnavailable

__all__ = ["is_missing_library", "translate"]

# Error replies that pass, by their first word: redis-py maps some of them to classes of its own
# and strips the word from the message, others it leaves in the text; both are looked at.
# UNBLOCKED: a blocked read cut short because the server became a replica (a failover).
# MISCONF: writes refused while a configured RDB snapshot cannot be written (a full disk).
_PASSING_CODES = (
    "LOADING",
    "READONLY",
    "UNBLOCKED",
    "BUSY",
    "MASTERDOWN",
    "NOREPLICAS",
    "TRYAGAIN",
    "MISCONF",
)
_PASSING_CLASSES: tuple[type[BaseException], ...] = (
    rex.BusyLoadingError,
    rex.ReadOnlyError,
    rex.TryAgainError,
    rex.ClusterDownError,  # MASTERDOWN is a subclass
)
_LOGIN_CODES = ("NOAUTH", "WRONGPASS", "NOPERM")


def _code(error: BaseException) -> str:
    """The first word of an error reply ('' when redis-py kept only the rest)."""
    status: object = getattr(error, "status_code", None)
    if isinstance(status, str) and status:
        return status
    text = str(error)
    return text.split(" ", 1)[0] if text[:1].isupper() else ""


def is_missing_library(error: BaseException) -> bool:
    """True when a call failed only because the server does not have our library (yet)."""
    return isinstance(error, rex.ResponseError) and "function not found" in str(error).lower()


def translate(  # noqa: PLR0911 - one return per kind of fault, in the order they are told apart
    error: BaseException, url: str, call: str = ""
) -> BrokerError:
    """The errands error for `error`, raised by redis-py (or returned in place of a reply).

    Args:
        error: what redis-py raised or returned (or an OSError from the socket).
        url: the broker URL (redacted in the message).
        call: what was being done, for the message of an unexpected error reply.
    """
    where = redact(url)
    code = _code(error)
    text = str(error)
    if isinstance(error, rex.AuthenticationError | rex.AuthorizationError) or code in _LOGIN_CODES:
        return BrokerError(
            f"Redis at {where} refused errands ({code or 'auth'}: {text}): give the right user "
            "and password in the URL (redis://user:password@host:6379/0), and let that user run "
            "FUNCTION, FCALL, FCALL_RO and the commands on the errands keys (ACL)"
        )
    if isinstance(error, rex.OutOfMemoryError) or code == "OOM":
        return BrokerFull(
            f"Redis at {where} is full (maxmemory reached) and refused the write; nothing of it "
            "was written: raise maxmemory, free memory, or let the workers drain the queues "
            "(errands queues shows which grows); use maxmemory-policy noeviction"
        )
    if isinstance(error, _PASSING_CLASSES) or code in _PASSING_CODES:
        return BrokerUnavailable(
            f"Redis at {where} cannot serve us now ({code or type(error).__name__}: {text}): a "
            "failover, a restart or a long script; it passes by itself, so retry (workers do)"
        )
    if isinstance(error, rex.InvalidResponse):
        return BrokerError(
            f"the server at {where} does not speak the Redis protocol ({text}): check the host "
            "and port of the broker URL"
        )
    if isinstance(error, rex.ConnectionError | rex.TimeoutError | OSError):
        return BrokerUnavailable(
            f"cannot reach Redis at {where} ({text or type(error).__name__}): start Redis there, "
            "or point errands elsewhere with App(broker_url=...) or ERRANDS_BROKER_URL; for a "
            "local server with no install, run `errands dev`"
        )
    lowered = text.lower()
    if "unknown command" in lowered and ("function" in lowered or "fcall" in lowered):
        return BrokerTooOld(
            "this Redis has no Functions (FUNCTION, FCALL): errands needs Redis 7.0 or newer, "
            "or Valkey 7.2 or newer, with scripting enabled; upgrade the server"
        )
    doing = f" to {call}" if call else ""
    return BrokerError(
        f"Redis at {where} refused a call{doing}: {text}. This is not a passing fault: a key of "
        "the errands namespace may have been written by something else, or this is a bug "
        "(please report it with this message)"
    )
