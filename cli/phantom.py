"""``medvae phantom brain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medvae_cli._run import run_task

app = typer.Typer(help="Make sample data with ground truth.", no_args_is_help=True)


@app.command("brain")
def brain(
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 10,
    out: Annotated[Path, typer.Option(help="Output folder: OUT/sub-001/{t1,t2,flair,cbf,mask}.nii.gz, ...")]
    = Path("medvae-brain"),
    seed: Annotated[int, typer.Option(help="Random seed (subject i depends only on seed and i).")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace subjects already in OUT.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Brain phantoms from the MNI152 template: T1, T2, FLAIR, CBF (ml/100 g/min) and a brain mask per subject.

    Each subject gets its own smooth deformation, bias fields, intensity factors and noise; CBF follows
    the tissue fractions (grey matter 60, white matter 20, CSF 0), smoothed and noisy like ASL.
    """
    from medvae.tasks.phantom import phantom_brain

    folders = run_task(phantom_brain, subjects, out, seed=seed, overwrite=overwrite, progress=progress)
    typer.echo(f"wrote {len(folders)} subjects to {out} (t1, t2, flair, cbf, mask and the noise-free cbf_truth .nii.gz each)")
