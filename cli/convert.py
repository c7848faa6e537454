"""``medvae convert IN OUT``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medvae_cli._run import fail, run_task


def convert(
    input: Annotated[Path, typer.Argument(help="An image file, a DICOM series folder (with --series), or a folder "
                                               "of images (searched recursively).")],
    output: Annotated[Path, typer.Argument(help="Output file (its suffix picks the format) or folder (mirrors the "
                                                "input tree).")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="png, tiff, jpeg, nii, dcm or npy "
                                                                        "(default: from OUT's suffix).")] = None,
    normalize: Annotated[str, typer.Option(help="Intensity window: auto, none, percentile (0.5-99.5), window "
                                                "(DICOM Window Center/Width) or minmax.")] = "auto",
    bits: Annotated[int, typer.Option(help="Bit depth of PNG/TIFF output when a window is applied: 8 or 16.")] = 8,
    series: Annotated[bool, typer.Option("--series", help="Read each folder of DICOM files as one volume.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo outputs that already exist.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Convert DICOM, NIfTI, PNG, TIFF, JPEG and .npy images, one file or a whole folder.

    Geometry is kept (no transposes or flips; DICOM pixel spacing and NIfTI affines carry over), DICOM
    rescale is applied and MONOCHROME1 inverted. DICOM output is derived DICOM with new UIDs. A folder
    run carries on past bad files, lists them at the end and exits 1 if any failed.
    """
    from medvae.tasks.convert import convert as run

    report = run_task(run, input, output, fmt=format, normalize=normalize, bits=bits, series=series,
                      overwrite=overwrite, progress=progress)
    for src, note in report.notes:
        typer.echo(f"note: {src}: {note}", err=True)
    total = len(report.done) + len(report.skipped) + len(report.failed)
    if total == 1 and report.failed:
        src, reason = report.failed[0]
        raise fail(f"{src}: {reason}", 1)
    if total == 1 and report.skipped:
        typer.echo(f"{report.skipped[0][1]} already exists (--overwrite redoes it)")
    elif len(report.done) == 1 and total == 1:
        typer.echo(f"wrote {report.done[0][1]}")
    else:
        typer.echo(report.summary("converted"), err=bool(report.failed))
    if report.failed:
        raise fail(f"{len(report.failed)} of {total} inputs failed (listed above)", 1)
