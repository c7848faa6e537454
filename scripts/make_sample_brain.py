"""Write sample_data/brain_real/TCGA-DU-7294/: a reduced copy of one real multi-contrast glioma MRI.

    python scripts/make_sample_brain.py [--data ../shared/data/brain-tcga/TCGA-DU-7294]

From the co-registered, skull-stripped 1 mm T1, T1c, T2 and FLAIR of TCGA-DU-7294 (TCIA TCGA-LGG, CC BY 3.0),
each volume is

1. reoriented to RAS (nibabel ``as_closest_canonical``),
2. reduced to 4 mm by averaging 4 × 4 × 4 blocks (so a block at the brain's edge is partly zero and still
   counts as brain: the brain mask stays "any source non-zero"),
3. cropped to the bounding box of the brain (voxels where any of the four is non-zero, one voxel of margin)
   and to :data:`SLICES` axial slices centred on the tumour (the largest connected component of FLAIR
   z-scored over the brain above 2.5, at 1 mm), kept inside the brain,
4. rounded to int16 and written as ``<modality>.nii.gz`` with a fresh header (the affine and nothing else of
   the original's).

The same crop is applied to all four, so they stay co-registered. Nothing of the original header but the
geometry is kept, and nothing is printed of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MODALITIES = ("t1", "t1c", "t2", "flair")
FACTOR = 4
SLICES = 16
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "brain-tcga" / "TCGA-DU-7294"  # ../shared beside the repo
OUT = Path(__file__).resolve().parents[1] / "sample_data" / "brain_real" / "TCGA-DU-7294"


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Average ``f``-voxel blocks along every axis (the array is first cut to multiples of ``f``)."""
    a = a[tuple(slice(0, (n // f) * f) for n in a.shape)]
    x, y, z = (n // f for n in a.shape)
    return a.reshape(x, f, y, f, z, f).mean(axis=(1, 3, 5))


def tumour_centre_z(flair: np.ndarray, brain: np.ndarray, threshold: float = 2.5) -> float:
    """The axial (third axis) centre of the largest connected FLAIR hyperintensity, in voxels."""
    from scipy import ndimage

    values = flair[brain].astype(np.float64)
    z = np.zeros(flair.shape)
    z[brain] = (values - values.mean()) / values.std()
    labels, n = ndimage.label(brain & (z > threshold))
    if not n:
        return float(np.flatnonzero(brain.any(axis=(0, 1))).mean())
    sizes = ndimage.sum(np.ones(flair.shape), labels, range(1, n + 1))
    tumour = labels == 1 + int(np.argmax(sizes))
    return float(np.flatnonzero(tumour.any(axis=(0, 1))).mean())


def main() -> None:
    import nibabel as nib
    from medvae.io.atomic import atomic_folder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT, help="the subject folder with t1/t1c/t2/flair.nii.gz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    images = {m: nib.as_closest_canonical(nib.load(args.data / f"{m}.nii.gz")) for m in MODALITIES}
    arrays = {m: np.asarray(im.dataobj, np.float32) for m, im in images.items()}
    affine = images["t1"].affine
    brain = np.any(np.stack([a != 0 for a in arrays.values()]), axis=0)
    centre = tumour_centre_z(arrays["flair"], brain) / FACTOR

    small = {m: block_mean(a, FACTOR) for m, a in arrays.items()}
    small_brain = np.any(np.stack([a != 0 for a in small.values()]), axis=0)
    lo = [max(0, int(np.flatnonzero(small_brain.any(axis=tuple(j for j in range(3) if j != i))).min()) - 1)
          for i in range(3)]
    hi = [min(n, int(np.flatnonzero(small_brain.any(axis=tuple(j for j in range(3) if j != i))).max()) + 2)
          for i, n in enumerate(small_brain.shape)]
    z0 = int(round(centre - SLICES / 2))
    z0 = min(max(z0, lo[2] + 1), hi[2] - 1 - SLICES)  # inside the brain's slices
    lo[2], hi[2] = z0, z0 + SLICES
    # voxel (i, j, k) of the reduced grid is the centre of the block starting at FACTOR * (i, j, k)
    to_small = np.diag([FACTOR, FACTOR, FACTOR, 1.0])
    to_small[:3, 3] = (FACTOR - 1) / 2 + FACTOR * np.asarray(lo)
    new_affine = affine @ to_small
    with atomic_folder(args.out) as tmp:  # written aside and swapped in: a failure leaves the old set
        for m, a in small.items():
            crop = np.round(a[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]).astype(np.int16)
            image = nib.Nifti1Image(crop, new_affine)
            image.set_qform(new_affine, code=1)
            image.set_sform(new_affine, code=1)
            nib.save(image, tmp / f"{m}.nii.gz")
    total = sum((args.out / f"{m}.nii.gz").stat().st_size for m in MODALITIES)
    print(f"wrote {', '.join(f'{m}.nii.gz' for m in MODALITIES)} to {args.out}: {SLICES} axial slices at "
          f"{FACTOR} mm around the tumour, {total / 1024:.0f} KB in all")


if __name__ == "__main__":
    main()
