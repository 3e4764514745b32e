"""`WebSettings`: how the HTTP API and the dashboard behave, set where the server is built."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WebSettings"]


@dataclass(frozen=True)
class WebSettings:
    """Settings of one API server (`errands.web.create_app`).

    Args:
        max_body_bytes: the largest request body taken; a bigger one is refused with 413
            before it is read whole.
        cors_origins: the origins a browser may call the API from; empty (the default) sends
            no CORS headers at all, so no other site's page can read a reply.
        public_openapi: ``/openapi.json`` and the interactive docs answer without a token.
        public_health: ``/healthz`` and ``/readyz`` answer without a token (the probes of a
            Kubernetes deployment carry none).
        ready_fetch_age_s: ``/readyz`` fails when a queue with work has no consumer that was
            heard from within this many seconds.
        max_wait_s: the longest ``?wait=`` a job read may hold a request open for.
        secure_cookies: the dashboard's session cookie is sent over HTTPS only (turn off only
            for a server on loopback).
        token_cache_s: how long the server takes a token it found good again without asking
            Redis: the longest a revoke or an expiry takes to reach this server (0: ask Redis
            on every request, one round trip more each).
    """

    max_body_bytes: int = 1 << 20
    cors_origins: tuple[str, ...] = ()
    public_openapi: bool = True
    public_health: bool = True
    ready_fetch_age_s: float = 60.0
    max_wait_s: float = 30.0
    secure_cookies: bool = True
    token_cache_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if self.token_cache_s < 0:
            raise ValueError(f"token_cache_s must be 0 or more, got {self.token_cache_s}")
        if self.max_wait_s <= 0:
            raise ValueError(f"max_wait_s must be positive, got {self.max_wait_s}")
