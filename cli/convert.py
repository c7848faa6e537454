"""``medvae convert INPUT OUTPUT``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medvae_cli._options import Deidentify, Overwrite, Progress, Shard
from medvae_cli._run import report_batch, run_task


def convert(
    input: Annotated[Path, typer.Argument(help="An image file, a DICOM series folder (with --series), or a folder "
                                               "of images (searched recursively).", metavar="INPUT")],
    output: Annotated[Path, typer.Argument(help="Output file (its suffix picks the format) or folder (mirrors the "
                                                "input tree).", metavar="OUTPUT")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="png, tiff, jpeg, nii, dcm or npy "
                                                                        "(default: from OUT's suffix).")] = None,
    normalize: Annotated[str, typer.Option(help="Intensity window: auto, none, percentile (0.5-99.5), window "
                                                "(DICOM Window Center/Width) or minmax.")] = "auto",
    bits: Annotated[int, typer.Option(help="Bit depth of PNG/TIFF output when a window is applied: 8 or 16.")] = 8,
    series: Annotated[bool, typer.Option("--series", help="Read each folder of DICOM files as one volume.")] = False,
    deidentify: Deidentify = False,
    shard: Shard = None,
    overwrite: Overwrite = False,
    progress: Progress = True,
) -> None:
    """Convert DICOM, NIfTI, PNG, TIFF, JPEG and .npy images, one file or a whole folder.

    Geometry is kept (no transposes or flips; DICOM pixel spacing and NIfTI affines carry over), DICOM
    rescale is applied and MONOCHROME1 inverted. DICOM output is derived DICOM with new UIDs. A folder
    run carries on past bad files, lists them at the end and exits 1 if any failed; outputs that exist
    are skipped (each named in a note) unless --overwrite.
    """
    from medvae.tasks.convert import convert as run

    report = run_task(run, input, output, fmt=format, normalize=normalize, bits=bits, series=series,
                      overwrite=overwrite, progress=progress, deidentify=deidentify, shard=shard)
    report_batch(report, "converted")
