"""``medvae phantom brain|cxr``: sample data with ground truth: paired multi-contrast brain phantoms (see
:mod:`medvae.phantoms.brain`) and chest radiograph phantoms with lung masks (:mod:`medvae.phantoms.cxr`).

Both write one output, a folder; one that exists is left alone (:class:`~medvae.errors.OutputExists`) unless
``overwrite``.
"""

from __future__ import annotations

import os
from pathlib import Path

from medvae.errors import OutputExists, UsageError, check_positive


def phantom_brain(n: int, out: str | os.PathLike, *, seed: int = 0, overwrite: bool = False,
                  progress: bool = True, lesions: bool = False) -> list[Path]:
    """Write ``n`` phantom subjects as ``out/sub-NNN/{t1,t2,flair,cbf,mask}.nii.gz``.

    The layout is the one ``medvae train synthesis`` reads for real data (BraTS-style subject folders).

    Raises:
        OutputExists: a subject folder this would write already holds files, and not ``overwrite``.
    """
    from medvae.phantoms.brain import write_brain_phantoms

    check_positive("n", n)
    out = Path(out)
    if not overwrite and any(_holds_files(out / f"sub-{i + 1:03d}") for i in range(n)):
        raise OutputExists(out, "phantom set")
    return write_brain_phantoms(n, out, seed=seed, overwrite=overwrite, progress=progress, lesions=lesions)


def phantom_cxr(n: int, out: str | os.PathLike, *, size: int = 512, seed: int = 0, fmt: str = "png",
                overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write ``n`` PA chest radiograph phantoms as ``out/images/cxr-0001.png`` (or ``.dcm``) with lung masks
    ``out/masks/cxr-0001.png`` (0/255), the plain layout of :func:`medvae.data.lung_datasets.lung_pairs`
    (see :mod:`medvae.phantoms.cxr`). Returns the image files.

    Raises:
        OutputExists: ``out`` is a folder that holds files, and not ``overwrite`` (with it, the phantom set
            there is replaced).
    """
    from medvae.phantoms.cxr import FORMATS, check_size, write_cxr_phantoms

    check_positive("n", n)  # bad usage is reported before an existing output
    check_size(size)
    if {"dicom": "dcm"}.get(str(fmt).lower(), str(fmt).lower()) not in FORMATS:
        raise UsageError(f"format {fmt!r} is not one the chest phantoms are written in; use png or dcm",
                         param="format")
    out = Path(out)
    if not overwrite and _holds_files(out):
        raise OutputExists(out, "phantom set")
    return write_cxr_phantoms(n, out, size=size, seed=seed, fmt=fmt, overwrite=overwrite, progress=progress)


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())
