"""``medvae info PATH``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medvae_cli._run import run_task


def info(
    path: Annotated[Path, typer.Argument(help="A medvae model file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
) -> None:
    """Say what a file is: a model's kind, config, preprocessing and training record."""
    from medvae.tasks import describe, format_description

    desc = run_task(describe, path)
    typer.echo(json.dumps(desc, indent=2) if as_json else format_description(desc))
