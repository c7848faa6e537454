"""``medvae info PATH``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medvae_cli._run import run_task


def info(
    path: Annotated[Path, typer.Argument(help="An image (DICOM, NIfTI, PNG, TIFF, JPEG, .npy), a DICOM "
                                                     "series folder, or a medvae model file.", metavar="PATH")],
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
) -> None:
    """Say what a file is: an image (shape, spacing, modality, intensities) or a model.

    For a medvae model file: its kind, config, preprocessing and training record. Patient-identifying
    DICOM attributes are never shown.
    """
    from medvae.tasks import describe, format_description

    desc = run_task(describe, path)
    typer.echo(json.dumps(desc, indent=2) if as_json else format_description(desc))
