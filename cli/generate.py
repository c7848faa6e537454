"""``medvae generate MODEL``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._run import run_task


def generate(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train vae|vaegan'.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("medvae-generated"),
    n: Annotated[int, typer.Option("--n", help="Images to draw from the prior.")] = 16,
    format: Annotated[str, typer.Option("--format", "-f", help="png, nii or dcm (NIfTI/DICOM marked synthetic).")]
    = "png",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same images.")] = 0,
    grid: Annotated[bool, typer.Option("--grid", help="Decode a latent grid (models with a 2-D latent).")] = False,
    grid_size: Annotated[int, typer.Option(help="Images per side of the grid.")] = 15,
    grid_range: Annotated[float, typer.Option(help="The grid covers [-r, r]^2.")] = 3.0,
    interpolate: Annotated[Optional[tuple[Path, Path]], typer.Option(help="Two images A B to encode and "
                                                                           "interpolate between.")] = None,
    steps: Annotated[int, typer.Option(help="Points on the interpolation path.")] = 8,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N, mps or auto.")] = "cpu",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace images already in --out.")] = False,
) -> None:
    """Generate images: draws from the prior, a latent grid, or an interpolation; plus a contact sheet."""
    from medvae.tasks.generate import generate as run

    result = run_task(run, model, out, n=n, fmt=format, seed=seed, grid=grid, grid_size=grid_size,
                      grid_range=grid_range, interpolate=tuple(interpolate) if interpolate else None, steps=steps,
                      device=device, overwrite=overwrite)
    typer.echo(f"wrote {len(result.files)} images and {result.contact_sheet.name} to {out}")
