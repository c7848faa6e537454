"""``medvae phantom brain`` and ``medvae phantom cxr``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._help import App
from medvae_cli._options import Overwrite, Progress, hidden
from medvae.errors import count
from medvae_cli._run import one_of, run_task

app = App(help="Make sample data with ground truth.", no_args_is_help=True)


@app.command("brain")
def brain(
    n: Annotated[int, typer.Option("--n", help="Number of subjects.")] = 10,
    out: Annotated[Path, typer.Option(help="Output folder: OUT/sub-001/{t1,t2,flair,cbf,mask}.nii.gz, ...")]
    = Path("medvae-brain"),
    seed: Annotated[int, typer.Option(help="Random seed (subject i depends only on seed and i).")] = 0,
    lesions: Annotated[bool, typer.Option("--lesions", help="Add synthetic lesions (MS-like, a tumour with "
                                                            "oedema, T1-only) and write their labels, "
                                                            "lesion.nii.gz.")] = False,
    overwrite: Overwrite = False,
    progress: Progress = True,
    subjects: Annotated[Optional[int], hidden("--subjects")] = None,
) -> None:
    """Brain phantoms from the MNI152 template: T1, T2, FLAIR, CBF (ml/100 g/min) and a brain mask per subject.

    Each subject gets its own smooth deformation, bias fields, intensity factors and noise; CBF follows
    the tissue fractions (grey matter 60, white matter 20, CSF 0), smoothed and noisy like ASL. Subjects
    already in OUT are kept (a note says so) unless --overwrite.
    """
    from medvae.tasks.phantom import phantom_brain

    n = one_of("n", n, subjects, "--subjects")
    folders = run_task(phantom_brain, n, out, seed=seed, overwrite=overwrite, progress=progress, lesions=lesions)
    also = ", lesion" if lesions else ""
    typer.echo(f"wrote {len(folders)} subjects to {out} (t1, t2, flair, cbf, mask{also} and the noise-free cbf_truth "
               ".nii.gz each)")


@app.command("cxr")
def cxr(
    n: Annotated[int, typer.Option("--n", help="Number of images.")] = 10,
    size: Annotated[int, typer.Option(help="Pixels per side (64 to 4096); the field of view is 35 cm.")] = 512,
    out: Annotated[Path, typer.Option(help="Output folder: OUT/images/cxr-0001.png and OUT/masks/cxr-0001.png, ...")]
    = Path("medvae-cxr"),
    seed: Annotated[int, typer.Option(help="Random seed (image i depends only on seed and i).")] = 0,
    format: Annotated[str, typer.Option("--format", help="Image format: png (8-bit) or dcm (12-bit CR DICOM); "
                                        "masks are always PNG.")] = "png",
    overwrite: Overwrite = False,
    progress: Progress = True,
) -> None:
    """PA chest radiograph phantoms with lung masks (0/255, both lungs) of the same names.

    Each image has its own pose, body and lung shapes, heart, ribs, clavicles, spine, vessel texture,
    intensity nonuniformity and noise; bright = dense. DICOM images are CR, MONOCHROME2, 12 bits, with
    PixelSpacing 350 mm / SIZE, and say they are synthetic. An OUT that holds files is left alone (a note
    says so) unless --overwrite, which replaces the phantom set there.
    """
    from medvae.tasks.phantom import phantom_cxr

    files = run_task(phantom_cxr, n, out, size=size, seed=seed, fmt=format, overwrite=overwrite, progress=progress)
    typer.echo(f"wrote {count(len(files), 'chest phantom')} to {out / 'images'} and their lung masks to "
               f"{out / 'masks'}")
