"""``medvae score`` and ``medvae evaluate anomaly``: from a model trained on a folder of normal images, a CSV a user
can sort, thresholds from the model file, maps in each input's geometry, and bad inputs named in one line."""

from __future__ import annotations

import csv
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from medvae_cli.main import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def blob(rng, size: int = 32) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    cy, cx = rng.uniform(10, size - 10, 2)
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 30)


def checkerboard(size: int = 32) -> np.ndarray:
    return ((np.arange(size)[:, None] // 2 + np.arange(size)[None] // 2) % 2).astype(float)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A conv VAE (learned variance) trained on 80 normal blob PNGs; 10 % of them held out as its normals."""
    root = tmp_path_factory.mktemp("anomaly")
    rng = np.random.default_rng(0)
    (root / "normal").mkdir()
    for i in range(80):
        PILImage.fromarray(np.uint8(255 * blob(rng))).save(root / "normal" / f"n{i:02d}.png")
    model = root / "vae.safetensors"
    result = invoke("train", "vae", "--data", root / "normal", "--size", "32", "--channels", "8,16", "--latent-dim",
                    "4", "--likelihood", "gaussian-learned", "--epochs", "6", "--batch-size", "16", "--lr", "0.003",
                    "--normalize", "minmax", "--out", model, "--no-progress")
    assert result.exit_code == 0, result.stderr
    return root, model


def _mixed(root, rng_seed: int = 1):
    rng = np.random.default_rng(rng_seed)
    folder = root / f"mixed{rng_seed}"
    if folder.exists():
        return folder
    folder.mkdir()
    for i in range(5):
        PILImage.fromarray(np.uint8(255 * blob(rng))).save(folder / f"normal{i}.png")
    PILImage.fromarray(np.uint8(255 * checkerboard())).save(folder / "odd.png")
    return folder


def _rows(path):
    with open(path, newline="") as f:
        return {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(f)}


def test_the_model_file_holds_the_normals_scores_and_score_ranks_the_outlier_first(trained, tmp_path):
    root, model = trained
    from medvae.checkpoint import read_model_info

    info = read_model_info(model)
    reference = info.preprocessing["anomaly"]
    assert reference["images"] == 8 and set(reference["scores"]) == {"recon_prob", "neg_elbo", "iwae", "recon_error"}
    result = invoke("score", model, _mixed(root), tmp_path / "out", "--no-progress")
    assert result.exit_code == 0, result.stderr
    rows = _rows(tmp_path / "out" / "scores.csv")
    assert len(rows) == 6
    for name in ("recon_prob", "neg_elbo", "iwae", "recon_error"):
        assert float(rows["odd.png"][name]) == max(float(r[name]) for r in rows.values()), name
    assert rows["odd.png"]["recon_prob_percentile"] == "100.0" and rows["odd.png"]["flagged"] == "yes"
    # the threshold is the stored normals' 95th percentile
    limit = float(np.quantile(reference["scores"]["recon_prob"], 0.95))
    assert float(rows["odd.png"]["threshold"]) == pytest.approx(limit, abs=1e-3)
    for r in rows.values():
        assert (r["flagged"] == "yes") == (float(r["recon_prob"]) > limit)


def test_calibrating_on_a_folder_of_normals_replaces_the_stored_ones(trained, tmp_path):
    root, model = trained
    result = invoke("score", model, _mixed(root), tmp_path / "out", "--normal", root / "normal", "--fpr", "0.2",
                    "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert {r["fpr"] for r in _rows(tmp_path / "out" / "scores.csv").values()} == {"0.2"}


def test_maps_keep_each_inputs_geometry(trained, tmp_path, sample_dir):
    root, model = trained
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(_mixed(root) / "odd.png", folder / "odd.png")
    affine = np.array([[0.7, 0.3, 0, -20], [-0.3, 0.7, 0.1, 5], [0, -0.1, 1.2, 30], [0, 0, 0, 1]])  # oblique
    nib.save(nib.Nifti1Image(np.float32(checkerboard(40)[:, :30]), affine), folder / "oblique.nii.gz")
    shutil.copy(sample_dir / "dicom" / "chest_cr.dcm", folder / "film.dcm")
    out = tmp_path / "out"
    result = invoke("score", model, folder, out, "--maps", "--no-progress")
    assert result.exit_code == 0, result.stderr
    nifti = nib.load(out / "oblique.anomaly.nii.gz")
    assert nifti.shape[:2] == (40, 30) and np.allclose(nifti.affine, affine, atol=1e-5)
    values = np.asarray(nifti.dataobj)
    assert np.isfinite(values).all() and values.std() > 0
    import pydicom

    source, written = pydicom.dcmread(sample_dir / "dicom" / "chest_cr.dcm"), pydicom.dcmread(out / "film.anomaly.dcm")
    assert (written.Rows, written.Columns) == (source.Rows, source.Columns)
    assert written.StudyInstanceUID == source.StudyInstanceUID
    if shutil.which("dciodvfy"):
        report = subprocess.run(["dciodvfy", str(out / "film.anomaly.dcm")], capture_output=True, text=True).stderr
        assert not [line for line in report.splitlines() if line.startswith("Error")]
    heat = np.asarray(PILImage.open(out / "odd.anomaly.png"))
    assert heat.shape == (32, 32, 3)
    rows = _rows(out / "scores.csv")
    assert rows["oblique.nii.gz"]["map"].endswith("oblique.anomaly.nii.gz")


def test_bad_inputs_are_named_in_one_line(trained, tmp_path):
    root, model = trained
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(_mixed(root) / "odd.png", folder / "odd.png")
    (folder / "cut.dcm").write_bytes(b"\0" * 100)
    result = invoke("score", model, folder, tmp_path / "out", "--no-progress")
    assert result.exit_code == 1
    assert f"{folder / 'cut.dcm'}: truncated" in result.stdout + result.stderr
    assert len(_rows(tmp_path / "out" / "scores.csv")) == 1  # the good file is scored all the same
    bad = invoke("score", model, folder, tmp_path / "out2", "--fpr", "1.5")
    assert bad.exit_code == 2 and "--fpr must be between 0 and 1" in bad.stderr


def test_a_model_without_stored_normals_says_how_to_calibrate(tmp_path):
    import torch

    from medvae.checkpoint import save_model
    from medvae.models import MLPVAE, MLPVAEConfig

    torch.manual_seed(0)
    model = save_model(tmp_path / "demo.safetensors", MLPVAE(MLPVAEConfig(hidden=(8,), latent_dim=2)),
                       preprocessing={"pipeline": "mnist"})
    (tmp_path / "in").mkdir()
    PILImage.fromarray(np.uint8(255 * checkerboard(28))).save(tmp_path / "in" / "a.png")
    result = invoke("score", model, tmp_path / "in", tmp_path / "out")
    assert result.exit_code == 1
    assert "holds no scores of held-out normal images" in result.stderr and "--normal" in result.stderr


def test_evaluate_anomaly_reports_every_score_beside_the_baselines(trained, tmp_path):
    root, model = trained
    rng = np.random.default_rng(5)
    for name, maker in (("normal", lambda: blob(rng)), ("anomalous", lambda: np.roll(checkerboard(), rng.integers(4)))):
        (tmp_path / name).mkdir()
        for i in range(12):
            PILImage.fromarray(np.uint8(255 * np.clip(maker() + 0.05 * rng.random((32, 32)), 0, 1))).save(
                tmp_path / name / f"{i}.png")
    result = invoke("evaluate", "anomaly", model, "--normal", tmp_path / "normal", "--anomalous", tmp_path / "anomalous",
                    "--baseline-epochs", "2", "--json")
    assert result.exit_code == 0, result.stderr
    import json

    report = json.loads(result.stdout)
    assert set(report["rows"]) == {"recon_prob", "neg_elbo", "iwae", "recon_error", "baseline: pca", "baseline: knn",
                                   "baseline: autoencoder", "baseline: mean_distance"}
    assert report["training_images"] == 72  # the 8 held-out normals are not fitted on
    assert report["rows"]["recon_prob"]["auroc"] > 0.9
    assert report["rows"]["recon_prob"]["prevalence"] == pytest.approx(0.5)


def test_evaluate_anomaly_refuses_a_digit_the_model_was_trained_on(tmp_path):
    result = invoke("train", "vae", "--data", "mnist", "--digits", "0,1,2", "--size", "16", "--channels", "8,16",
                    "--epochs", "1", "--limit", "64", "--out", tmp_path / "m.safetensors", "--no-progress")
    assert result.exit_code == 0, result.stderr
    bad = invoke("evaluate", "anomaly", tmp_path / "m.safetensors", "--data", "mnist", "--anomaly-digit", "1")
    assert bad.exit_code == 2 and "the model was trained on it" in bad.stderr


def test_malformed_stored_normals_are_one_line(trained, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    root, model = trained
    with safe_open(str(model), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    pre = json.loads(meta["preprocessing"])
    pre["anomaly"]["scores"]["recon_prob"] = "high"
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={**meta, "preprocessing": json.dumps(pre)})
    result = invoke("score", bad, _mixed(root), tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {bad}: not a valid medvae model file (its preprocessing's "
                                     "anomaly.scores must be a JSON object of non-empty lists of numbers)")


def test_evaluate_anomaly_with_masks_scores_the_maps_pixel_by_pixel(trained, tmp_path):
    root, model = trained
    rng = np.random.default_rng(7)
    for name in ("normal", "anomalous", "masks"):
        (tmp_path / name).mkdir()
    for i in range(10):
        PILImage.fromarray(np.uint8(255 * blob(rng))).save(tmp_path / "normal" / f"{i}.png")
        image, mask = blob(rng), np.zeros((32, 32))
        y, x = rng.integers(4, 20, 2)
        image[y:y + 8, x:x + 8] = checkerboard(8)
        mask[y:y + 8, x:x + 8] = 1
        PILImage.fromarray(np.uint8(255 * image)).save(tmp_path / "anomalous" / f"{i}.png")
        PILImage.fromarray(np.uint8(255 * mask)).save(tmp_path / "masks" / f"{i}.png")
    result = invoke("evaluate", "anomaly", model, "--normal", tmp_path / "normal", "--anomalous",
                    tmp_path / "anomalous", "--masks", tmp_path / "masks", "--baseline-epochs", "1", "--json")
    assert result.exit_code == 0, result.stderr
    import json

    pixel = json.loads(result.stdout)["pixel_rows"]
    assert set(pixel) == {"model map (-log p(x|z) per pixel)", "baseline: intensity", "baseline: voxel z-score"}
    found = pixel["model map (-log p(x|z) per pixel)"]
    assert found["prevalence"] == pytest.approx(64 / (32 * 32) / 2, rel=0.05)
    assert found["auprc"] > 3 * found["prevalence"] and 0 < found["best_dice"] <= 1
    (tmp_path / "masks" / "3.png").unlink()
    missing = invoke("evaluate", "anomaly", model, "--normal", tmp_path / "normal", "--anomalous",
                     tmp_path / "anomalous", "--masks", tmp_path / "masks", "--baseline-epochs", "1")
    assert missing.exit_code == 2 and "no mask for" in missing.stderr
