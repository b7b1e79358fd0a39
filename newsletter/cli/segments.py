"""``newsletter segments``: who falls in which segment and why, before a send."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from newsletter.cli.app import app, now, opened, settings

segments_app = typer.Typer(help="Check segment rules and overlaps.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")


@segments_app.command("explain")
def explain_cmd(
    segment: Annotated[
        list[str] | None, typer.Option("--segment", "-s", help="Only this segment (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """List who falls in which segment and why, with counts and how overlaps are settled.

    The lists' files are merged into the store first, as the next digest will do.
    """
    import newsletter.digest  # noqa: F401  (first: digest and audience.explain import each other)
    from newsletter.audience.explain import explain

    cfg = settings()
    with opened(cfg) as store:
        result = explain(cfg, store, now(), segment or None, sync_files=True)
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo("\n".join(result.text_lines()))
