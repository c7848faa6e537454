"""train / evaluate enhance and segment end to end on tiny data, and the models shipped in the package."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medvae.checkpoint import read_model_info
from medvae.phantoms.cxr import write_cxr_phantoms
from medvae.io.images import read_image
from medvae_cli.main import app

SAMPLE = Path(__file__).resolve().parents[3] / "sample_data"
runner = CliRunner()
TINY = ["--channels", "4,8,16", "--epochs", "1", "--batch-size", "4", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cxr")
    write_cxr_phantoms(6, folder, size=64, seed=0, progress=False)
    return folder


@pytest.fixture(scope="module")
def enhancer(phantoms, tmp_path_factory):
    out = tmp_path_factory.mktemp("enh") / "e.safetensors"
    result = runner.invoke(app, ["train", "enhance", "--data", str(SAMPLE / "png/chest_8bit.png"), "--data",
                                 str(phantoms / "images"), "--patch", "32", "--patches-per-epoch", "8",
                                 "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def segmenter(phantoms, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "s.safetensors"
    result = runner.invoke(app, ["train", "segment", "--data", str(phantoms), "--size", "64", "--out", str(out),
                                 *TINY])
    assert result.exit_code == 0, result.output
    return out


def test_train_enhance_records_split_and_command(enhancer, phantoms):
    info = read_model_info(enhancer)
    assert info.kind == "enhancer"
    train, test = info.training["train_images"], info.training["test_images"]
    assert any(p.endswith("chest_8bit.png") for p in train)  # a file named directly always trains
    assert len(test) == 1 and not set(train) & set(test)  # the folder's 6 images split by image
    assert info.training["command"].startswith("medvae train enhance --data ")
    assert "--patch 32" in info.training["command"]


def test_train_enhance_fine_tunes_from_init(enhancer, phantoms, tmp_path):
    out = tmp_path / "ft.safetensors"
    result = runner.invoke(app, ["train", "enhance", "--data", str(SAMPLE / "png/chest_8bit.png"), "--init",
                                 str(enhancer), "--patch", "32", "--patches-per-epoch", "8", "--lr", "1e-9",
                                 "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    from safetensors.numpy import load_file

    before, after = load_file(str(enhancer)), load_file(str(out))
    weights = [k for k in before if "running" not in k and "num_batches" not in k]
    assert all(np.allclose(before[k], after[k], atol=1e-5) for k in weights)  # lr ~0: the init's weights
    assert f"--init {enhancer.name}" in read_model_info(out).training["command"]  # named, not where it lay


@pytest.mark.parametrize("args, message", [
    (["--patch", "30"], "--patch 30 must be a multiple of 4"),
    (["--kinds", "noise,fog"], "--kinds fog: choose from"),
    (["--severity", "0.5,2"], "--severity must be two numbers"),
    (["--annotations", "1.5"], "--annotations must be a share between 0 and 1, got 1.5"),
    (["--borders", "-0.1"], "--borders must be a share between 0 and 1, got -0.1"),
    (["--collimation", "2"], "--collimation must be a share between 0 and 1, got 2"),
    (["--appearance", "-1"], "--appearance must be a share between 0 and 1, got -1"),
])
def test_train_enhance_usage_errors(args, message, tmp_path):
    result = runner.invoke(app, ["train", "enhance", "--data", str(SAMPLE / "png/chest_8bit.png"),
                                 "--out", str(tmp_path / "e.safetensors"), *TINY, *args])
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_train_segment_needs_masks(tmp_path):
    (tmp_path / "set" / "images").mkdir(parents=True)
    shutil.copy(SAMPLE / "png/chest_8bit.png", tmp_path / "set/images/a.png")
    result = runner.invoke(app, ["train", "segment", "--data", str(tmp_path / "set"), "--out",
                                 str(tmp_path / "s.safetensors"), *TINY])
    assert result.exit_code in (1, 2) and str(tmp_path / "set") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = runner.invoke(app, ["train", "segment", "--out", str(tmp_path / "s.safetensors"), *TINY])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: missing option --data")


def test_train_segment_data_is_images_and_masks_and_the_old_options_still_work(segmenter, phantoms, tmp_path):
    info = read_model_info(segmenter)
    assert len(info.training["train_images"]) + len(info.training["test_images"]) == 6
    assert "--images" not in runner.invoke(app, ["train", "segment", "--help"], terminal_width=200).stdout
    out = tmp_path / "old.safetensors"
    old = runner.invoke(app, ["train", "segment", "--images", str(phantoms / "images"), "--masks",
                              str(phantoms / "masks"), "--size", "64", "--out", str(out), *TINY])
    assert old.exit_code == 0, old.output
    assert read_model_info(out).training["train_images"] == info.training["train_images"]  # the same split
    both = runner.invoke(app, ["train", "segment", "--data", str(phantoms), "--images", str(phantoms / "images"),
                               "--out", str(tmp_path / "x.safetensors"), *TINY])
    assert both.exit_code == 2 and "--images is the old spelling of --data" in both.stderr


def test_train_skips_an_existing_model_with_a_note_unless_overwrite(segmenter, phantoms, tmp_path):
    out = tmp_path / "s.safetensors"
    shutil.copy(segmenter, out)
    args = ["train", "segment", "--data", str(phantoms), "--size", "64", "--out", str(out), *TINY]
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.strip() == f"note: {out}: the model file exists; skipped (--overwrite redoes it)"
    assert out.read_bytes() == segmenter.read_bytes()
    redo = runner.invoke(app, [*args, "--overwrite", "--seed", "1"])
    assert redo.exit_code == 0, redo.output
    assert out.read_bytes() != segmenter.read_bytes()


def test_evaluate_enhance_prints_the_table_and_checks(enhancer, phantoms):
    result = runner.invoke(app, ["evaluate", "enhance", str(enhancer), "--data", str(phantoms / "images"),
                                 "--kinds", "noise,grid", "--severities", "0.5"])
    assert result.exit_code == 0, result.output
    assert "| noise | 0.5 |" in result.stdout and "| grid | 0.5 |" in result.stdout
    assert result.stdout.count("PASS") + result.stdout.count("MISS") == 3  # noise, grid, do no harm
    assert "1 clean film;" in result.stdout  # the 5 it trained on are left out
    assert "tuned per row on 4 training films" in result.stdout  # ... and 4 of them tune the baselines


def test_evaluate_segment_prints_dice_and_hausdorff(segmenter, enhancer, phantoms):
    result = runner.invoke(app, ["evaluate", "segment", str(segmenter), "--data", str(phantoms), "--enhancer",
                                 str(enhancer), "--kinds", "noise", "--severities", "0.9"])
    assert result.exit_code == 0, result.output
    assert "| noise | 0.9 |" in result.stdout and "clean images: Dice" in result.stdout


def test_shipped_models_work_out_of_the_box(tmp_path):
    from medvae.pretrained import packaged_model

    for kind in ("enhancer", "segmenter"):
        info = read_model_info(packaged_model(kind))
        assert info.kind == kind and info.training["command"].startswith(f"medvae train {kind[:-2] if kind == 'enhancer' else 'segment'}")
    src = SAMPLE / "dicom/chest_cr.dcm"
    result = runner.invoke(app, ["enhance", str(src), str(tmp_path / "e.dcm"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "e.dcm").array.shape == read_image(src).array.shape
    result = runner.invoke(app, ["segment", str(src), str(tmp_path / "seg"), "--enhance", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "seg/chest_cr.png").is_file() and (tmp_path / "seg/lung_areas.csv").is_file()
