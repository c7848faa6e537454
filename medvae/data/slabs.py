"""Hold out contiguous axial slabs of a volume: a train/test split inside one subject.

With a single subject (or on request, ``train synthesis --holdout slabs``), whole subjects cannot be held out.
Instead, from the lowest axial slice that holds brain upwards, the volume is cut into blocks of
:data:`SLAB_MM` mm; every ``period``-th block (from block ``phase``) is held out for testing, and the slices
within :data:`GAP_MM` mm of a held-out slice are used for neither training nor testing.

Why 16 mm and 8 mm:

* Clinical brain MRI is often acquired as thick axial slices (about 5–6 mm; the public BraTS/TCGA cases are
  interpolated from them to 1 mm). A 1 mm slice is then a blend of the acquired slices within one slice
  thickness of it, so neighbouring 1 mm slices are near-copies. A held-out slab must be several acquired
  slices thick to contain anything new: 16 mm is about three 5.5 mm slices.
* The gap of 8 mm (more than one 5.5 mm acquired slice) keeps the last training slice and the first held-out
  slice at least 9 mm apart (1 mm grid; 10 mm on a 2 mm grid): under linear through-plane interpolation no
  two of them are blends of the same pair of acquired slices, and only the outer 1–2 mm of a held-out slab
  can share one acquired slice (with a small weight) with a training slice. Its interior shares none.
* Every 4th block (``period`` 4, i.e. ``test_fraction`` 0.25) tests 16 of each 64 mm, trains on 32 and drops 16.

The held-out slabs are recorded as slice index ranges on the model's grid and as ranges of the world
superior (RAS S) coordinate in mm, so they can be found again on any grid (:func:`slab_voxels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medvae.errors import UsageError

SLAB_MM = 16.0
GAP_MM = 8.0


@dataclass
class SlabSplit:
    """Which axial slices (third axis of a RAS grid) train and which are held out.

    ``train`` and ``heldout`` are boolean ``(Z,)``; ``heldout_ranges`` and ``train_ranges`` the contiguous
    runs as ``[start, stop)`` slice indices; ``heldout_mm`` and ``train_mm`` the same runs as ``[low, high)``
    ranges of the world S coordinate (the slices' centres ± half a slice).
    """

    train: np.ndarray
    heldout: np.ndarray
    heldout_ranges: list[tuple[int, int]]
    train_ranges: list[tuple[int, int]]
    heldout_mm: list[tuple[float, float]]
    train_mm: list[tuple[float, float]]

    def to_dict(self) -> dict:
        """JSON-ready: what a model file records of the split for one subject."""
        return {"heldout_slices": [list(r) for r in self.heldout_ranges],
                "train_slices": [list(r) for r in self.train_ranges],
                "heldout_mm": [[round(lo, 3), round(hi, 3)] for lo, hi in self.heldout_mm],
                "train_mm": [[round(lo, 3), round(hi, 3)] for lo, hi in self.train_mm]}


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of True in a 1-D boolean array as ``[start, stop)`` pairs."""
    f = np.concatenate([[False], np.asarray(flags, bool), [False]])
    edges = np.flatnonzero(np.diff(f.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def period_of(test_fraction: float) -> int:
    """Every how many slabs one is held out: ``round(1 / test_fraction)``, at least 2."""
    return max(2, int(round(1.0 / test_fraction)))


def slab_flags(brain_slices: np.ndarray, spacing_z: float, *, period: int, phase: int = 0,
               slab_mm: float = SLAB_MM, gap_mm: float = GAP_MM) -> tuple[np.ndarray, np.ndarray]:
    """``(train, heldout)`` boolean ``(Z,)`` for slices ``spacing_z`` mm apart, ``brain_slices`` marking those
    that hold brain: blocks of ``slab_mm`` from the lowest brain slice, block ``b`` held out when
    ``b % period == phase % period``, slices within ``gap_mm`` of a held-out slice in neither set."""
    brain_slices = np.asarray(brain_slices, bool)
    n = len(brain_slices)
    train, heldout = np.zeros(n, bool), np.zeros(n, bool)
    if not brain_slices.any():
        return train, heldout
    z = np.flatnonzero(brain_slices)
    first, last = int(z[0]), int(z[-1])
    k = np.arange(first, last + 1)
    offset = (k - first) * float(spacing_z)
    block = np.floor(offset / slab_mm + 1e-6).astype(int)
    held = block % period == phase % period
    heldout[k] = held
    if held.any():
        dist = np.abs(offset[:, None] - offset[held][None, :]).min(axis=1)
        train[k] = ~held & (dist > gap_mm + 1e-6)
    else:
        train[k] = True
    return train, heldout


def split_slabs(brain_slices: np.ndarray, affine: np.ndarray, shape: tuple[int, ...], *, period: int,
                phase: int = 0, slab_mm: float = SLAB_MM, gap_mm: float = GAP_MM, name: str = "subject") -> SlabSplit:
    """The slab split of one subject on a RAS grid of ``shape`` ``(X, Y, Z)`` and ``affine``;
    ``brain_slices`` ``(Z,)`` marks the axial slices that hold brain (the blocks start at the lowest).

    Raises:
        UsageError (param ``holdout``): the brain is too short axially to hold out a slab and keep training
            slices beside it.
    """
    affine = np.asarray(affine, np.float64)
    spacing_z = float(np.sqrt((affine[:3, 2] ** 2).sum()))
    brain_slices = np.asarray(brain_slices, bool)
    train, heldout = slab_flags(brain_slices, spacing_z, period=period, phase=phase, slab_mm=slab_mm,
                                gap_mm=gap_mm)
    if not (train & brain_slices).any() or not (heldout & brain_slices).any():
        extent = brain_slices.sum() * spacing_z
        raise UsageError(f"holdout slabs: {name}'s brain spans {extent:.0f} mm axially, too little to hold out "
                         f"{slab_mm:g} mm slabs (every {period}th, {gap_mm:g} mm gap) and train beside them; "
                         "use more subjects with holdout subjects", param="holdout")
    centre = np.array([(shape[0] - 1) / 2, (shape[1] - 1) / 2])
    heldout_ranges = runs(heldout)

    def s_of(k: float) -> float:  # world S (mm) of the point (centre, centre, k) of the grid
        return float(affine[2, :2] @ centre + affine[2, 2] * k + affine[2, 3])

    def mm(ranges):
        return [tuple(sorted((s_of(a - 0.5), s_of(b - 0.5)))) for a, b in ranges]

    train_ranges = runs(train)
    return SlabSplit(train=train, heldout=heldout, heldout_ranges=heldout_ranges, train_ranges=train_ranges,
                     heldout_mm=mm(heldout_ranges), train_mm=mm(train_ranges))


def slab_voxels(affine: np.ndarray, shape: tuple[int, ...], ranges_mm) -> np.ndarray:
    """Boolean ``shape`` (3-D): the voxels whose centre's world S coordinate (RAS, mm) lies in one of
    ``ranges_mm`` ``[[low, high), ...]``: the held-out slabs on an image's own grid, whatever its spacing."""
    affine = np.asarray(affine, np.float64)
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape[:3]), indexing="ij", sparse=True)
    s = affine[2, 0] * i + affine[2, 1] * j + affine[2, 2] * k + affine[2, 3]
    out = np.zeros(tuple(shape[:3]), bool)
    for lo, hi in ranges_mm:
        out |= (s >= lo) & (s < hi)
    return out


def heldout_voxels(training: dict, folder, image, part: str = "heldout") -> np.ndarray | None:
    """The held-out slabs (``part="train"``: the training slabs) of subject ``folder`` on ``image``'s own grid
    (boolean, its shape), from a model file's training record (``training["heldout_slabs"]``); None when the
    model held out whole subjects or did not train on this subject."""
    from pathlib import Path

    if part not in ("heldout", "train"):
        raise UsageError(f"part must be heldout or train, got {part!r}", param="part")
    if training.get("holdout") != "slabs":
        return None
    slabs = (training.get("heldout_slabs") or {}).get(str(Path(folder).resolve()))
    if slabs is None:
        return None
    return slab_voxels(image.affine, image.array.shape, slabs[f"{part}_mm"])
