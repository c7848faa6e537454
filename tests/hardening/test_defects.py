"""Regression tests for the hardening defects (issue 17) that the fuzz families do not reach: exit codes, killed and
concurrent runs, long names, --debug for batches, messages that misled, and lung_areas.csv across runs."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medvae.io.atomic import NAME_MAX, InProgress, atomic_path
from medvae_cli.main import app

FILM = Path(__file__).resolve().parents[2] / "sample_data" / "cxr" / "images" / "2168a917.png"


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory) -> Path:
    """A tiny MLP VAE on 28x28 images (what the MNIST demo writes)."""
    import torch

    from medvae.checkpoint import save_model
    from medvae.models.mlp_vae import MLPVAE, MLPVAEConfig

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vae") / "m.safetensors"
    return save_model(path, MLPVAE(MLPVAEConfig(hidden=(8,), latent_dim=2)), preprocessing={"pipeline": "mnist"},
                      training={"epochs": 1})


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def two_films(tmp_path: Path) -> Path:
    """A folder ``in`` holding two copies of a sample film, a.png and b.png."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(FILM, folder / "a.png")
    shutil.copy(FILM, folder / "b.png")
    return folder


def dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# 3: exit codes ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["train", "vae", "--data", "/nonexistent_dir", "--epochs", "1"],
                                  ["train", "segment", "--images", "/nonexistent_dir", "--epochs", "1"]])
def test_a_missing_data_folder_is_bad_usage_naming_the_option(args):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {args[2]} /nonexistent_dir: no such folder")


# 5: killed runs --------------------------------------------------------------------------------------------------

def test_a_rerun_removes_the_temporary_file_a_killed_run_left_and_finishes(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".a.{dead_pid()}.abcdefgh.part.nii.gz"
    stale.write_bytes(b"half a file")
    shutil.copy(FILM, tmp_path / "a.png")
    result = invoke("convert", tmp_path / "a.png", out / "a.nii.gz")
    assert result.exit_code == 0, result.stderr
    assert not stale.exists() and (out / "a.nii.gz").exists()
    assert not [p for p in out.iterdir() if ".part" in p.name]


def test_a_temporary_file_of_a_live_run_is_left_to_it(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".a.{other.pid}.abcdefgh.part.png"
        live.write_bytes(b"being written")
        with pytest.raises(InProgress, match="in progress by another run"):
            with atomic_path(tmp_path / "a.png"):
                pass
        assert live.exists()
    finally:
        other.kill()
        other.wait()


def test_generate_resumes_a_run_killed_before_its_contact_sheet(tmp_path, tiny_vae):
    out = tmp_path / "gen"
    assert invoke("generate", tiny_vae, "--out", out, "--n", "6", "--device", "cpu").exit_code == 0
    first = {p.name: p.read_bytes() for p in out.glob("sample_*.png")}
    # what a kill after the third image leaves: the run's marker, three images, a stale temporary, no sheet
    (out / "contact_sheet.png").unlink()
    for name in sorted(first)[3:]:
        (out / name).unlink()
    from medvae.tasks.generative.generate import RUN_MARKER

    marker = out / RUN_MARKER
    marker.write_text(_marker_text(tiny_vae, 6))
    (out / f".sample_0004.{dead_pid()}.abcdefgh.part.png").write_bytes(b"")
    result = invoke("generate", tiny_vae, "--out", out, "--n", "6", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert "resumed an interrupted run: kept the 3 images" in result.stderr
    assert {p.name: p.read_bytes() for p in out.glob("sample_*.png")} == first  # the same seed, the same images
    assert (out / "contact_sheet.png").exists() and not marker.exists()
    assert not [p for p in out.iterdir() if ".part" in p.name]
    # a finished set is left alone, as before
    again = invoke("generate", tiny_vae, "--out", out, "--n", "6", "--device", "cpu")
    assert again.exit_code == 0 and "exists; skipped" in again.stderr


def _marker_text(model: Path, n: int) -> str:
    import json

    return json.dumps({"model": str(model.resolve()), "mode": "sample", "count": n, "format": "png", "seed": 0,
                       "grid_range": None, "interpolate": None}, indent=2) + "\n"


def test_generate_with_other_settings_than_the_killed_run_does_not_mix_sets(tmp_path, tiny_vae):
    out = tmp_path / "gen"
    assert invoke("generate", tiny_vae, "--out", out, "--n", "4", "--device", "cpu").exit_code == 0
    (out / "contact_sheet.png").unlink()
    from medvae.tasks.generative.generate import RUN_MARKER

    (out / RUN_MARKER).write_text(_marker_text(tiny_vae, 4))
    result = invoke("generate", tiny_vae, "--out", out, "--n", "4", "--seed", "7", "--device", "cpu")
    assert result.exit_code == 0 and "exists; skipped (--overwrite redoes it)" in result.stderr


# 6 and 9: one failure, and --debug, in a batch -----------------------------------------------------------------

@pytest.mark.parametrize("command", ["enhance", "segment", "convert"])
def test_a_single_failed_file_is_one_line_on_stderr_naming_it(tmp_path, command):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cut.dcm").write_bytes(b"\0" * 100)
    extra = ["--format", "png"] if command == "convert" else ["--device", "cpu"]
    result = invoke(command, folder, tmp_path / "out", *extra, "--no-progress")
    assert result.exit_code == 1
    assert result.stdout.strip() in ("", f"lung areas: {tmp_path / 'out' / 'lung_areas.csv'}")
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {folder / 'cut.dcm'}: truncated: 100 bytes, shorter than a DICOM file's 128-byte "
                     "preamble and 'DICM' prefix; not a complete DICOM file"]


def test_debug_shows_the_traceback_of_every_failure_in_a_batch(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(b"\0" * 100)
    (folder / "b.dcm").write_bytes(b"\0" * 90)
    result = invoke("--debug", "convert", folder, tmp_path / "out", "--format", "png", "--no-progress")
    assert result.exit_code == 1
    assert result.stderr.count("Traceback (most recent call last)") == 2
    assert f"traceback for {folder / 'a.dcm'}" in result.stderr


# 8: long names ---------------------------------------------------------------------------------------------------

def test_an_output_name_that_fits_gets_a_temporary_name_that_fits_too(tmp_path):
    name = "x" * (NAME_MAX - len(".nii.gz")) + ".nii.gz"
    assert len(name.encode()) == NAME_MAX
    shutil.copy(FILM, tmp_path / "a.png")
    result = invoke("convert", tmp_path / "a.png", tmp_path / name)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / name).exists()


def test_a_long_non_ascii_name_is_cut_on_bytes(tmp_path):
    name = "é" * 124 + ".png"  # 252 bytes in UTF-8
    with atomic_path(tmp_path / name) as tmp:
        assert len(os.fsencode(tmp.name)) <= NAME_MAX
        tmp.write_bytes(b"x")
    assert (tmp_path / name).read_bytes() == b"x"


# 10: messages that misled ----------------------------------------------------------------------------------------

def test_enhance_keeps_a_float_tiff_as_a_float_tiff(tmp_path):
    from PIL import Image as PILImage

    values = np.linspace(0.25, 3.75, 64 * 64, dtype=np.float32).reshape(64, 64)
    PILImage.fromarray(values).save(tmp_path / "f.tif")
    result = invoke("enhance", tmp_path / "f.tif", tmp_path / "out", "--device", "cpu", "--no-check")
    assert result.exit_code == 0, result.stderr
    assert "--normalize" not in result.stdout + result.stderr
    back = np.asarray(PILImage.open(tmp_path / "out" / "f.tif"))
    assert back.dtype == np.float32 and back.shape == (64, 64)


def test_convert_series_into_one_file_from_a_folder_with_subfolders_does_not_suggest_series(tmp_path, sample_dir):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(sample_dir / "dicom" / "chest_cr.dcm", tmp_path / "in" / "a.dcm")
    shutil.copy(sample_dir / "dicom" / "chest_cr.dcm", tmp_path / "in" / "sub" / "b.dcm")
    result = invoke("convert", tmp_path / "in", tmp_path / "v.nii.gz", "--series")
    assert result.exit_code == 2
    assert "or pass --series" not in result.stderr
    assert "has subfolders" in result.stderr and "drop the .nii.gz suffix" in result.stderr


# 11: concurrent runs ---------------------------------------------------------------------------------------------

def test_an_output_another_run_finished_meanwhile_is_skipped_not_failed(tmp_path, monkeypatch):
    import medvae.io.images as images

    folder = two_films(tmp_path)
    real = images.write_image

    def racing(image, path, **kwargs):  # the other run writes b's output after this run found it missing
        if Path(path).name == "b.png":
            Path(path).write_bytes(b"written by the other run")
        return real(image, path, **kwargs)

    monkeypatch.setattr(images, "write_image", racing)
    result = invoke("enhance", folder, tmp_path / "out", "--device", "cpu", "--no-check", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "enhanced 1, skipped 1 already done" in result.stdout
    assert (tmp_path / "out" / "b.png").read_bytes() == b"written by the other run"


def test_an_output_a_live_run_is_writing_is_left_to_it(tmp_path):
    folder = two_films(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / f".b.{other.pid}.abcdefgh.part.png").write_bytes(b"")
        result = invoke("convert", folder, out, "--format", "png", "--no-progress")
    finally:
        other.kill()
        other.wait()
    assert result.exit_code == 0, result.stderr
    assert f"note: {out / 'b.png'}: in progress by another run; left to it" in result.stderr
    assert "left 1 to another run" in result.stdout and (out / "a.png").exists() and not (out / "b.png").exists()


# 12: lung_areas.csv across runs ----------------------------------------------------------------------------------

def test_segmenting_one_file_into_a_folder_keeps_the_other_rows_of_its_csv(tmp_path):
    folder = two_films(tmp_path)
    out = tmp_path / "out"
    assert invoke("segment", folder, out, "--device", "cpu", "--no-progress").exit_code == 0
    result = invoke("segment", folder / "a.png", out, "--device", "cpu", "--overwrite", "--no-progress")
    assert result.exit_code == 0, result.stderr
    with open(out / "lung_areas.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["input"]).name for r in rows) == ["a.png", "b.png"]
