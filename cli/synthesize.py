"""``medvae synthesize MODEL --input IN --out OUT``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._run import fail, run_task


def synthesize(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train synthesis'.")],
    input: Annotated[Path, typer.Option("--input", help="A source image (file or DICOM series folder), a subject "
                                                        "folder, or a folder of subject folders.")],
    out: Annotated[Path, typer.Option(help="Output file (.nii.gz, .nii, .dcm for a DICOM series, .npy); for a "
                                           "folder of subjects, an output folder.")],
    samples: Annotated[int, typer.Option(help="Latent draws: the output is their mean.")] = 16,
    uncertainty: Annotated[Optional[Path], typer.Option(help="Also write the per-voxel predictive standard "
                                                             "deviation here (one input; a folder of subjects "
                                                             "always gets <target>_std files).")]
    = None,
    seed: Annotated[int, typer.Option(help="Random seed for the draws.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N, mps or auto.")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that exist.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Synthesise a missing modality; output in the input's grid and format, marked synthetic."""
    from medvae.tasks.synthesize import synthesize as run

    report = run_task(run, model, input, out, samples=samples, uncertainty=uncertainty, seed=seed, device=device,
                      overwrite=overwrite, progress=progress)
    for src, note in report.notes:
        typer.echo(f"note: {src}: {note}", err=True)
    if len(report.done) + len(report.skipped) + len(report.failed) == 1 and not report.failed:
        if report.skipped:
            typer.echo(f"skipped: {report.skipped[0][1]} exists (--overwrite redoes it)")
        else:
            extra = f" and {uncertainty}" if uncertainty else ""
            typer.echo(f"wrote {report.done[0][1]}{extra}")
        return
    typer.echo(report.summary("synthesised"))
    if report.exit_code:
        raise fail(f"{len(report.failed)} of {len(report.done) + len(report.failed)} subjects failed", 1)
