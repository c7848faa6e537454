"""``medvae phantom brain|cxr``: sample data with ground truth: paired multi-contrast brain phantoms (see
:mod:`medvae.phantoms.brain`) and chest radiograph phantoms with lung masks (:mod:`medvae.phantoms.cxr`)."""

from __future__ import annotations

import os
from pathlib import Path


def phantom_brain(subjects: int, out: str | os.PathLike, *, seed: int = 0, overwrite: bool = False,
                  progress: bool = True) -> list[Path]:
    """Write ``subjects`` phantom subjects as ``out/sub-NNN/{t1,t2,flair,cbf,mask}.nii.gz``.

    The layout is the one ``medvae train synthesis`` reads for real data (BraTS-style subject folders).
    """
    from medvae.phantoms.brain import write_brain_phantoms

    return write_brain_phantoms(subjects, out, seed=seed, overwrite=overwrite, progress=progress)


def phantom_cxr(n: int, out: str | os.PathLike, *, size: int = 512, seed: int = 0, fmt: str = "png",
                overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write ``n`` PA chest radiograph phantoms as ``out/images/cxr-0001.png`` (or ``.dcm``) with lung masks
    ``out/masks/cxr-0001.png`` (0/255), the plain layout of :func:`medvae.data.lung_datasets.lung_pairs`
    (see :mod:`medvae.phantoms.cxr`). Returns the image files.
    """
    from medvae.phantoms.cxr import write_cxr_phantoms

    return write_cxr_phantoms(n, out, size=size, seed=seed, fmt=fmt, overwrite=overwrite, progress=progress)
