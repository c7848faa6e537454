"""Synthesis on a real brain (sample_data/brain_real: TCGA-DU-7294, reduced): BraTS-style folders without a
mask, the brain from non-zero voxels, and the split by axial slabs that one subject needs."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medvae.checkpoint import read_model_info
from medvae.data.paired import brain_mask, find_subjects, prepare_subject, read_subject_folder
from medvae.data.slabs import GAP_MM, SLAB_MM, runs, slab_flags, slab_voxels, split_slabs
from medvae.errors import UsageError
from medvae.tasks.synthesis.train import SynthesisTrainConfig, train_synthesis

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "sample_data" / "brain_real"
SUBJECT = SAMPLE / "TCGA-DU-7294"
MODALITIES = ["t1", "t1c", "t2", "flair"]
TINY = dict(spacing=(4.0, 4.0, 4.0), channels=(4, 8), latent_channels=2, epochs=1, batch_size=8, progress=False,
            previews=False, device="cpu", holdout="slabs")


def test_sample_is_small_real_and_complete():
    files = sorted(SUBJECT.glob("*.nii.gz"))
    assert [f.name for f in files] == sorted(f"{m}.nii.gz" for m in MODALITIES)
    assert sum(f.stat().st_size for f in files) < 300_000
    shapes = {nib.load(f).shape for f in files}
    assert len(shapes) == 1 and 12 <= shapes.pop()[2] <= 20
    assert all(nib.load(f).get_data_dtype() == np.int16 for f in files)
    assert "CC BY 3.0" in (SAMPLE / "README.md").read_text()


# ----------------------------------------------------------------------------- the slab split


@pytest.mark.parametrize("spacing", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("phase", [0, 1, 2, 3])
def test_slabs_are_whole_blocks_with_a_gap(spacing, phase):
    n = int(round(150 / spacing))
    brain = np.zeros(n, bool)
    first, last = int(round(10 / spacing)), int(round(140 / spacing)) - 1
    brain[first:last + 1] = True
    train, held = slab_flags(brain, spacing, period=4, phase=phase)
    assert not (train & held).any() and train.any() and held.any()
    assert not ((train | held) & (np.arange(n) < first)).any() and not ((train | held) & (np.arange(n) > last)).any()
    per_slab = int(round(SLAB_MM / spacing))
    for start, stop in runs(held):  # whole blocks of 16 mm from the first brain slice, every 4th from `phase`
        assert (start - first) % per_slab == 0 and ((start - first) // per_slab) % 4 == phase
        assert stop - start == per_slab or stop == last + 1
    z = np.arange(n) * spacing
    gap = np.abs(z[train][:, None] - z[held][None, :]).min()
    assert gap > GAP_MM  # at least GAP_MM of unused slices between training and held-out slices
    left_out = brain[first:last + 1].sum() - train.sum() - held.sum()
    assert left_out * spacing >= GAP_MM  # the gap slices are used by neither


def test_slab_ranges_in_mm_find_the_same_slices_on_a_finer_grid():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -120, -60]
    split = split_slabs(np.ones(70, bool), affine, (8, 8, 70), period=4, phase=1)
    assert split.heldout_ranges and split.to_dict()["heldout_slices"] == [list(r) for r in split.heldout_ranges]
    fine = affine.copy()
    fine[:3, :3] = np.eye(3)  # a 1 mm grid over the same space (voxel 0 half a coarse voxel lower)
    fine[:3, 3] -= 0.5
    voxels = slab_voxels(fine, (16, 16, 140), split.heldout_mm)
    assert voxels.any(axis=(0, 1)).sum() == 2 * split.heldout.sum()  # every coarse slice is two fine ones
    coarse = np.flatnonzero(split.heldout)
    assert set(np.flatnonzero(voxels.any(axis=(0, 1))) // 2) == set(coarse)


def test_a_brain_too_short_for_slabs_is_a_holdout_error():
    with pytest.raises(UsageError, match="holdout") as e:
        split_slabs(np.ones(5, bool), np.eye(4) * [2, 2, 2, 1], (4, 4, 5), period=4)
    assert e.value.param == "holdout"


@pytest.mark.parametrize("bad", [dict(holdout="slices"), dict(holdout="slabs", spatial_dims=3, patch_size=16)])
def test_bad_holdout_names_the_parameter(bad):
    with pytest.raises(UsageError, match="holdout") as e:
        SynthesisTrainConfig(data=str(SAMPLE), sources=("t1",), target="t2", **bad)
    assert e.value.param == "holdout"


def test_one_subject_cannot_hold_out_subjects(tmp_path):
    with pytest.raises(UsageError, match="holdout slabs") as e:
        train_synthesis(data=str(SAMPLE), sources=("t1",), target="t2", out=tmp_path / "m.safetensors",
                        **{**TINY, "holdout": "subjects"})
    assert e.value.param == "holdout"


# ----------------------------------------------------------------------------- folders and the brain mask


def test_the_brain_is_the_non_zero_voxels_of_the_sources():
    images = read_subject_folder(SUBJECT, ["t1", "t1c", "t2"])
    assert "mask" not in images  # a BraTS-style folder: no mask file
    raw = np.stack([images[m].array for m in ("t1", "t1c")])
    expected = np.any(raw != 0, axis=0)
    assert 0.2 < expected.mean() < 0.9
    assert (brain_mask(images, ["t1", "t1c"]) == expected).all()
    prepared = prepare_subject(images, ["t1", "t1c"], spacing=(4.0, 4.0, 4.0), multiple=1, spatial_dims=2,
                               target="t2")
    assert prepared.mask.sum() == expected.sum()  # same grid (RAS, 4 mm): the same voxels


def test_a_brain_voxel_at_the_mean_intensity_stays_in_the_mask():
    from medvae.io.image import Image

    a = np.zeros((4, 4, 2), np.float32)
    a[1:3, 1:3] = [[[1, 3], [2, 2]], [[2, 2], [2, 2]]]  # mean 2: z-scores to 0, yet brain
    images = {"t1": Image(a), "t2": Image(a * 5)}
    prepared = prepare_subject(images, ["t1"], spacing=(1.0, 1.0, 1.0), multiple=1, spatial_dims=2, target="t2")
    assert prepared.mask.sum() == 8


def test_brats_2023_names_and_modality_names(tmp_path):
    subject = tmp_path / "BraTS-GLI-00001-000"
    subject.mkdir(parents=True)
    for old, new in (("t1", "t1n"), ("t1c", "t1c"), ("t2", "t2w"), ("flair", "t2f")):
        shutil.copy(SUBJECT / f"{old}.nii.gz", subject / f"BraTS-GLI-00001-000-{new}.nii.gz")
    found = find_subjects(tmp_path, ["t1n", "t1c", "t2f"])
    assert [s.name for s in found] == [subject.name]
    assert found[0].files["t1n"].name.endswith("-t1n.nii.gz") and found[0].files["t2f"].name.endswith("-t2f.nii.gz")
    with pytest.raises(UsageError, match=r"source 't1\.nii\.gz' is a file.*\(t1\)") as e:
        SynthesisTrainConfig(data=str(tmp_path), sources=("t1.nii.gz",), target="t2")
    assert e.value.param == "source"


# ----------------------------------------------------------------------------- a tiny training on the sample


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("real_brain")
    gan = train_synthesis(data=str(SAMPLE), sources=("t1",), target="flair", out=out / "gan.safetensors", **TINY)
    unet = train_synthesis(data=str(SAMPLE), sources=("t1",), target="flair", out=out / "unet.safetensors",
                           model="unet", **TINY)
    return gan, unet


def test_tiny_training_holds_out_slabs_and_stores_them(tiny):
    gan, unet = tiny
    info = read_model_info(gan.model_path)
    t = info.training
    key = str(SUBJECT.resolve())
    assert t["holdout"] == "slabs" and t["slab_mm"] == SLAB_MM and t["gap_mm"] == GAP_MM
    assert t["train_subjects"] == t["test_subjects"] == [key]
    slabs = t["heldout_slabs"][key]
    held = [z for a, b in slabs["heldout_slices"] for z in range(a, b)]
    train = [z for a, b in slabs["train_slices"] for z in range(a, b)]
    assert held and train and not set(held) & set(train)
    assert min(abs(a - b) for a in held for b in train) * 4.0 > GAP_MM  # 4 mm slices, more than 8 mm apart
    assert len(held) == SLAB_MM / 4.0  # one whole 16 mm slab of the 64 mm sample
    assert gan.n_val == len(held) and gan.n_train == len(train)  # every slice of the sample holds brain
    assert "--holdout slabs" in t["command"]
    assert read_model_info(unet.model_path).training["heldout_slabs"] == t["heldout_slabs"]


def test_only_the_heldout_slabs_are_scored(tiny):
    spec = importlib.util.spec_from_file_location("real_brain_eval", ROOT / "scripts" / "real_brain_eval.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    gan, unet = tiny
    result = script.evaluate(SAMPLE, [gan.model_path, unet.model_path], samples=2)
    (row,) = result["results"]
    slabs = read_model_info(gan.model_path).training["heldout_slabs"][str(SUBJECT.resolve())]
    images = read_subject_folder(SUBJECT, ["t1", "flair"])
    brain = brain_mask(images, ["t1"])
    scored = brain & slab_voxels(images["t1"].affine, brain.shape, slabs["heldout_mm"])
    assert row["heldout_brain_voxels"] == scored.sum() > 0
    # the sample is RAS at the model's 4 mm: its slices are the model's slices
    assert set(np.flatnonzero(scored.any(axis=(0, 1)))) == {z for a, b in slabs["heldout_slices"] for z in range(a, b)}
    assert row["train_brain_voxels"] + row["heldout_brain_voxels"] < brain.sum()  # the gap is scored by neither
    for method in ("model", "l1_unet", "linear"):
        assert np.isfinite(row[method]["psnr"]) and -1 <= row[method]["ssim"] <= 1
    assert row["std"]["mean_heldout"] > 0


def test_evaluate_synthesis_scores_a_slab_model_on_its_heldout_slabs_only(tiny):
    from medvae.tasks.synthesis.evaluate import evaluate_synthesis

    gan, unet = tiny
    result = evaluate_synthesis(gan.model_path, SAMPLE, baseline=unet.model_path, samples=2, device="cpu",
                                progress=False)
    (row,) = result["subjects"]
    slabs = read_model_info(gan.model_path).training["heldout_slabs"][str(SUBJECT.resolve())]
    images = read_subject_folder(SUBJECT, ["t1", "flair"])
    scored = brain_mask(images, ["t1"]) & slab_voxels(images["flair"].affine, images["flair"].array.shape,
                                                      slabs["heldout_mm"])
    assert row["subject"] == SUBJECT.name and row["scored_voxels"] == scored.sum() > 0
    assert "warning" not in result["baseline_note"]  # the U-Net holds out the same slabs
    assert all(np.isfinite(result["mean"][m]["psnr"]) for m in ("model", "linear", "l1_unet"))
