"""``newsletter serve``: the subscriber-facing web app under uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from newsletter.cli.app import app, err, settings, state


@app.command("serve")
def serve_cmd(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: [web] host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: [web] port).", min=0, max=65535)
    ] = None,
) -> None:
    """Serve unsubscribe, preferences, sign-up, archive and webhooks until Ctrl-C/SIGTERM."""
    from newsletter.web import serve

    cfg = settings()
    if not state.debug:
        # a service's log: refused requests and their reasons (paths without tokens),
        # housekeeping; uvicorn's access log stays off, since page URLs carry tokens
        logging.getLogger("newsletter").setLevel(logging.INFO)
    err.print(
        f"serving {cfg.web.base_url} on {host or cfg.web.host}:"
        f"{cfg.web.port if port is None else port}",
        highlight=False,
    )
    if cfg.desk.enabled:
        err.print(f"the desk is at {cfg.web.base_url}/desk/", highlight=False)
    serve(cfg, host=host, port=port)
