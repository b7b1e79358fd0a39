"""``newsletter config explain``: what each config.toml key means, from the models."""

from __future__ import annotations

from typing import Annotated

import typer

from newsletter.cli.app import app, out
from newsletter.cli.output import JsonOpt, print_json, print_table, safe

config_app = typer.Typer(help="Explain the configuration keys.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("explain")
def explain_cmd(
    key: Annotated[
        str | None,
        typer.Argument(
            help="A key such as provider.batch_size or schedule[].cron (default: every key).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print every config key (or one) with its type, default and description.

    An unknown key exits 2 with the closest known keys as a hint.
    """
    from newsletter.config.explain import explain  # pydantic: only for this command

    docs = explain(key)
    if as_json:
        print_json(docs)
    elif key is None:
        rows = [
            [d.path, d.type, d.default, d.description + (f" ({d.applies})" if d.applies else "")]
            for d in docs
        ]
        print_table(["key", "type", "default", "description"], rows)
    else:
        for i, doc in enumerate(docs):
            if i:
                out.print()
            out.print(
                f"[bold]{safe(doc.path)}[/]" + (f"  ({safe(doc.applies)})" if doc.applies else "")
            )
            out.print(f"  type:    {safe(doc.type)}", highlight=False)
            out.print(f"  default: {safe(doc.default or '-')}", highlight=False)
            if doc.description:
                out.print(f"  {safe(doc.description)}", highlight=False)
