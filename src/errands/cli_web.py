"""``errands api``: the HTTP API and the dashboard of an app, served by uvicorn."""

from __future__ import annotations

import json
from typing import Literal

import click

from errands.errors import ConfigurationError
from errands.loading import load_app
from errands.observe.logging import configure_logging

__all__ = ["api", "need_web_extra", "schema"]

_EXTRA = "the HTTP API needs the web extra: pip install 'errands[web]'"


def need_web_extra() -> None:
    """Refuse with what to install when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401, PLC0415
        import uvicorn  # noqa: F401, PLC0415
    except ImportError as missing:
        raise ConfigurationError(f"{_EXTRA} ({missing})") from None


@click.command()
@click.argument("app_spec", metavar="APP")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
@click.option(
    "--insecure-cookies",
    is_flag=True,
    help="Send the dashboard's session cookie over plain HTTP (a server on loopback only).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="An origin whose pages may call the API (repeat for more; none: no CORS headers).",
)
@click.option(
    "--private-docs", is_flag=True, help="/openapi.json and /docs need a token with read."
)
@click.option("--private-probes", is_flag=True, help="/healthz and /readyz need a token with read.")
@click.option(
    "--token-cache",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds a token found good is taken again without asking Redis: the longest a "
    "revoke takes to reach this server (0: ask on every request).",
)
def api(
    app_spec: str,
    host: str,
    port: int,
    log_level: str,
    log_format: Literal["console", "json"],
    insecure_cookies: bool,
    cors_origins: tuple[str, ...],
    private_docs: bool,
    private_probes: bool,
    token_cache: float,
) -> None:
    """Serve the HTTP API and the dashboard of APP (module:app) until SIGTERM or Ctrl-C."""
    need_web_extra()
    import uvicorn  # noqa: PLC0415 - web extra

    from errands.web import WebSettings, create_app  # noqa: PLC0415 - web extra

    configure_logging(log_level, log_format)
    app = load_app(app_spec)
    settings = WebSettings(
        secure_cookies=not insecure_cookies,
        cors_origins=cors_origins,
        public_openapi=not private_docs,
        public_health=not private_probes,
        token_cache_s=token_cache,
    )
    server = create_app(app, settings)
    click.echo(f"errands api: serving {app_spec} on http://{host}:{port}", err=True)
    uvicorn.run(server, host=host, port=port, log_config=None, access_log=False)


@click.command()
@click.argument("app_spec", metavar="APP")
@click.option("--task", "task_name", help="Print only this task's schema.")
def schema(app_spec: str, task_name: str | None) -> None:
    """Print the JSON Schema of each task's request body (POST /v1/tasks/<name>) of APP.

    The same schemas as the API's /openapi.json, as one JSON Schema 2020-12 document.
    """
    from errands.web.schemas import catalog_document  # noqa: PLC0415 - msgspec only

    app = load_app(app_spec)
    document = catalog_document(app)
    if task_name is not None:
        tasks = document["tasks"]
        if task_name not in tasks:
            known = ", ".join(tasks) or "none"
            raise click.UsageError(f"no task named {task_name!r} (registered: {known})")
        document["tasks"] = {task_name: tasks[task_name]}
    click.echo(json.dumps(document, indent=2))
