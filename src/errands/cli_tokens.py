"""``errands token create|list|revoke``: the bearer tokens of the HTTP API (`errands.web`).

``create`` prints the token alone on standard output (so ``TOKEN=$(errands token create ...)``
works) and what it is on standard error; the token is shown this once, Redis keeps only the
SHA-256 of its secret. Scopes are checked against the app's tasks, so the app must be named:
APP, else ``ERRANDS_APP``, else ``[tool.errands] app`` in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import click

from errands.cli_output import Listing, emit_json, iso
from errands.cli_target import Target, resolve_target
from errands.cli_web import need_web_extra
from errands.errors import ConfigurationError
from errands.loading import ENV_APP

if TYPE_CHECKING:
    from errands.web.tokens import TokenStore

__all__ = ["parse_duration", "token"]

T = TypeVar("T")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SCOPES_HELP = "enqueue:<task>, enqueue:*, read, read:payloads, operate or admin"


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``30d``, ``12h``, ``15m``, ``90s`` or ``1d12h``.

    Raises:
        click.BadParameter: anything else, or a duration of zero.
    """
    cleaned = text.strip().lower()
    parts = re.findall(r"(\d+)([smhd])", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise click.BadParameter(f"{text!r} is not a duration: write it as 30d, 12h, 15m or 90s")
    seconds = float(sum(int(n) * _UNITS[u] for n, u in parts))
    if seconds <= 0:
        raise click.BadParameter(f"{text!r} is no time at all: a token must live a while")
    return seconds


def _app(app_spec: str | None) -> Target:
    """The app whose tokens these are: its tasks are what enqueue scopes name."""
    need_web_extra()
    chosen = resolve_target(app_spec, None, None)
    if not chosen.discovered:
        raise ConfigurationError(
            "tokens belong to an app: name it, as `errands token list package.module:app`, or "
            f'set {ENV_APP}, or app = "package.module:app" under [tool.errands] in pyproject.toml'
        )
    return chosen


def _run(chosen: Target, work: Callable[[TokenStore], Awaitable[T]]) -> T:
    """`work` on the app's token store, on an event loop of its own; connections closed after."""
    from errands.web.tokens import token_store  # noqa: PLC0415 - web extra

    async def run() -> T:
        try:
            return await work(token_store(chosen.app))
        finally:
            await chosen.app.broker.aclose()

    return asyncio.run(run())


@click.group()
def token() -> None:
    """Bearer tokens of the HTTP API: create one (shown once), list them, revoke one."""


@token.command()
@click.argument("app_spec", metavar="[APP]", required=False)
@click.option(
    "--scope", "scopes", multiple=True, required=True, help=f"What it may do: {_SCOPES_HELP}."
)
@click.option("--expires", help="It stops working after this long: 30d, 12h, 15m (default: never).")
@click.option("--note", default="", help="What it is for, for the others (shown by list).")
def create(app_spec: str | None, scopes: Sequence[str], expires: str | None, note: str) -> None:
    """Create a token for APP (module:app) and print it, alone on stdout, this once.

    APP defaults to $ERRANDS_APP, else to app under [tool.errands] in pyproject.toml.
    """
    expires_in_s = None if expires is None else parse_duration(expires)
    chosen = _app(app_spec)
    from errands.web.auth import check_scopes  # noqa: PLC0415 - web extra, checked by _app

    wanted = check_scopes(scopes, chosen.app.tasks)
    secret, info = _run(
        chosen, lambda store: store.create(wanted, expires_in_s=expires_in_s, note=note)
    )
    until = f"expires {iso(info.expires_at)}" if info.expires_at is not None else "never expires"
    click.echo(
        f"created token {info.id} in {chosen.where()}: scopes {', '.join(info.scopes)}; {until}. "
        "It is shown this once: keep it now (revoke it with errands token revoke).",
        err=True,
    )
    click.echo(secret)


@token.command("list")
@click.argument("app_spec", metavar="[APP]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (times in UTC).")
def list_tokens(app_spec: str | None, as_json: bool) -> None:
    """Show APP's tokens: id, scopes, state, created, expires, last used, note (never a secret).

    Revoked and expired tokens stay listed for a week.
    """
    chosen = _app(app_spec)
    from errands.web.tokens import token_document  # noqa: PLC0415 - web extra, checked by _app

    infos = _run(chosen, lambda store: store.list())
    now = time.time()
    if as_json:
        emit_json({**chosen.header(), "tokens": [token_document(i, now) for i in infos]})
        return
    if not infos:
        click.echo(f"no tokens in {chosen.where()}: create one with errands token create", err=True)
        return
    listing = Listing(
        "id", "scopes", "state", "created", "expires", "last used", "note", wrap=["note"]
    )
    for info in infos:
        listing.add(
            info.id,
            ",".join(info.scopes),
            info.state(now),
            iso(info.created_at),
            iso(info.expires_at) or "never",
            iso(info.last_used_at) or "never",
            info.note,
        )
    listing.print()


@token.command()
@click.argument("names", metavar="[APP] ID", nargs=-1, required=True)
def revoke(names: Sequence[str]) -> None:
    """Revoke the token ID of APP: every API process refuses it from its next request on.

    APP defaults to $ERRANDS_APP, else to app under [tool.errands] in pyproject.toml.
    """
    if len(names) > 2:
        raise click.UsageError("give at most APP and ID")
    *spec, token_id = names
    chosen = _app(spec[0] if spec else None)

    async def work(store: TokenStore) -> tuple[bool, float | None]:
        """(found, when it was revoked already: None when revoked now)."""
        before = await store.get(token_id)
        if before is not None and before.revoked_at is not None:
            return True, before.revoked_at
        # A record that does not decode has no `before`, and is revoked all the same.
        return await store.revoke(token_id), None

    found, revoked_before = _run(chosen, work)
    if not found:
        raise ConfigurationError(
            f"no token has the id {token_id!r} in {chosen.where()}: errands token list shows them"
        )
    if revoked_before is not None:
        click.echo(f"token {token_id} was revoked already, at {iso(revoked_before)}")
        return
    click.echo(f"revoked token {token_id}: every API process refuses it from now on")
