"""``/docs/plain``: the OpenAPI document as one self-contained HTML page (no script, no CDN).

FastAPI's own pages load Swagger UI from a CDN, which a server without internet (or a browser
behind a strict proxy) cannot reach; a package that ships those assets would be one more
dependency. This page renders each operation (method, path, what it needs, its request body's
schema and its replies) on the server, from the same document ``/openapi.json`` serves.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

__all__ = ["render"]

_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
    "h2{font-size:1.05em;margin:1.6em 0 .3em}code,pre{font:13px ui-monospace,monospace}"
    "pre{background:#f4f4f4;padding:.6em;overflow:auto;max-height:24em}"
    ".m{display:inline-block;min-width:4.5em;font-weight:bold}"
    "details{margin:.3em 0}"
)


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    parts = [
        f"<h2><span class=m>{escape(method.upper())}</span> <code>{escape(path)}</code></h2>",
        f"<p>{escape(operation.get('summary', ''))}</p>",
    ]
    description = operation.get("description", "")
    if description:
        parts.append(f"<pre>{escape(description)}</pre>")
    for parameter in operation.get("parameters", []):
        where, name = parameter.get("in", ""), parameter.get("name", "")
        parts.append(f"<div>parameter <code>{escape(name)}</code> in {escape(where)}</div>")
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        schema = json.dumps(body.get("schema", {}), indent=2)
        parts.append(
            f"<details><summary>request body</summary><pre>{escape(schema)}</pre></details>"
        )
    codes = ", ".join(escape(str(code)) for code in operation.get("responses", {}))
    parts.append(f"<div>replies: {codes}</div>")
    return "\n".join(parts)


def render(document: dict[str, Any]) -> str:
    """The HTML page of `document` (an OpenAPI 3.1 document)."""
    info = document.get("info", {})
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}")
    sections = [
        _operation(path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
    ]
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
        f"<p>{escape(info.get('description', ''))} The machine-readable document: "
        "<a href='/openapi.json'>/openapi.json</a>. Send <code>Authorization: Bearer "
        "&lt;token&gt;</code> (<code>errands token create</code>).</p>"
        + "\n".join(sections)
        + "</body></html>"
    )
