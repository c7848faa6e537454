"""``medvae enhance IN OUT`` and ``medvae segment IN OUT``: chest X-ray enhancement and lung segmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._run import fail, run_task


def _finish(report, verb: str) -> None:
    for src, note in report.notes:
        typer.echo(f"note: {src}: {note}", err=True)
    typer.echo(report.summary(verb))
    if report.exit_code:
        raise fail(f"{len(report.failed)} of {len(report.done) + len(report.failed)} inputs failed", 1)


def enhance(
    input: Annotated[Path, typer.Argument(help="A radiograph (DICOM, PNG, TIFF, NIfTI, ...) or a folder of them "
                                               "(searched recursively).")],
    output: Annotated[Path, typer.Argument(help="Output file for one input, or a folder mirroring the input's.")],
    model: Annotated[Optional[Path], typer.Option(help="An enhancer from 'medvae train enhance' (default: the "
                                                       "one shipped with medvae).")] = None,
    compare: Annotated[Optional[Path], typer.Option(help="Also write <name>.before.png / .after.png pairs here, "
                                                         "through the same display window.")] = None,
    tile: Annotated[int, typer.Option(help="Largest tile side (pixels); larger images are split into tiles.")]
    = 1024,
    overlap: Annotated[int, typer.Option(help="Pixels shared by neighbouring tiles.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    check: Annotated[bool, typer.Option(help="Say which inputs do not look like frontal chest films (a note per "
                                             "file, and chest_check.csv for a folder).")] = True,
    checker: Annotated[Optional[Path], typer.Option(help="The lung segmenter whose output makes that check "
                                                         "(default: the one shipped with medvae).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that exist (they are skipped otherwise).")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Enhance chest radiographs: each output in its input's format, size, dtype, geometry and value range."""
    from medvae.tasks.enhance import EnhanceOptions
    from medvae.tasks.enhance import enhance as run

    options = EnhanceOptions(tile=tile, overlap=overlap, compare=compare, device=device, check=check,
                             checker=checker)
    _finish(run_task(run, input, output, model=model, options=options, overwrite=overwrite, progress=progress),
            "enhanced")


def segment(
    input: Annotated[Path, typer.Argument(help="A chest radiograph or a folder of them (searched recursively).")],
    output: Annotated[Path, typer.Argument(help="Output folder: masks, <name>.overlay.png and lung_areas.csv.")],
    model: Annotated[Optional[Path], typer.Option(help="A segmenter from 'medvae train segment' (default: the "
                                                       "one shipped with medvae).")] = None,
    enhance: Annotated[bool, typer.Option("--enhance", help="Enhance each radiograph first.")] = False,
    enhancer: Annotated[Optional[Path], typer.Option(help="The enhancer for --enhance (default: the shipped "
                                                          "one); implies --enhance.")] = None,
    format: Annotated[str, typer.Option("--format", help="Mask format: png (0/255), nii (1 right, 2 left lung) "
                                                         "or dcm (DICOM SEG; DICOM inputs).")] = "png",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that exist (they are skipped otherwise).")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Segment the lungs with a ResUNet++: masks in each input's geometry, overlays and a CSV of lung areas."""
    from medvae.tasks.segment import segment as run

    report, csv_path = run_task(run, input, output, model=model, enhance=enhance, enhancer=enhancer, fmt=format,
                                overwrite=overwrite, progress=progress, device=device)
    typer.echo(f"lung areas: {csv_path}")
    _finish(report, "segmented")
