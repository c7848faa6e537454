"""The chest X-ray pipeline on the real sample films: patient-level folds, per-fold evaluation, the chest check."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medvae import checkpoint
from medvae.checkpoint import read_model_info
from medvae.tasks.cxr import chest_check
from medvae_cli.main import app

SAMPLE = Path(__file__).resolve().parents[3] / "sample_data"
CXR = SAMPLE / "cxr"
runner = CliRunner()
TINY = ["--size", "32", "--channels", "4,8,16", "--epochs", "1", "--batch-size", "4", "--no-progress",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    """Two segmenters, one per fold of a 2-fold patient split of the 8 sample films."""
    folder = tmp_path_factory.mktemp("folds")
    paths = []
    for fold in (0, 1):
        out = folder / f"fold{fold}.safetensors"
        result = runner.invoke(app, ["train", "segment", "--data", str(CXR), "--folds", "2", "--fold", str(fold),
                                     "--out", str(out), "--mask-convention", "retrocardiac lung included", *TINY])
        assert result.exit_code == 0, result.output
        paths.append(out)
    return paths


def test_folds_hold_out_whole_patients_and_record_the_split(folds):
    held = []
    for path in folds:
        t = read_model_info(path).training
        assert t["split"]["by"] == "patient" and t["split"]["patients"] == 6 and t["split"]["folds"] == 2
        assert not set(t["train_images"]) & set(t["test_images"])
        held += t["test_images"]
        # patient 219's two films (index.csv) are on the same side
        assert ("53c9be49.png" in t["test_images"]) == ("b343e657.png" in t["test_images"])
        assert t["mask_convention"] == "retrocardiac lung included"
        assert t["data_attribution"]["licences"] == {"CC BY 3.0": 8}
        assert "--mask-convention 'retrocardiac lung included'" in t["command"]
        assert not any(str(Path.cwd()) in p or p.startswith("/") for p in t["train_images"] + t["test_images"])
    assert sorted(held) == sorted(p.name for p in (CXR / "images").iterdir())


def test_models_store_the_chest_check_ranges(folds):
    stored = read_model_info(folds[0]).preprocessing["chest_check"]
    assert stored["calibrated_on"] == "the training films" and stored["films"] > 0
    for name in chest_check.FEATURES:
        low, high = stored["ranges"][name]
        assert low <= high


def test_evaluate_segment_scores_each_film_once_by_the_model_that_held_it_out(folds):
    result = runner.invoke(app, ["evaluate", "segment", *map(str, folds), "--data", str(CXR), "--kinds", "noise",
                                 "--severities", "0.9", "--size", "64", "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    assert len(report["images"]) == 8 and {im["fold"] for im in report["images"]} == {0, 1}
    for im in report["images"]:
        held = read_model_info(folds[im["fold"]]).training["test_images"]
        assert Path(im["image"]).name in held
        assert 0 <= im["clean"][0] <= 1 and im["rows"][0]["degradation"] == "noise"
    assert report["unit"] == "px" and len(report["checks"]) == 3


def test_evaluate_segment_table_has_a_row_per_fold_and_overall(folds):
    result = runner.invoke(app, ["evaluate", "segment", *map(str, folds), "--data", str(CXR / "images"),
                                 "--masks", str(CXR / "masks"), "--kinds", "none", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "| 0 | fold0.safetensors |" in result.stdout and "| 1 | fold1.safetensors |" in result.stdout
    assert "| all |  | 8 |" in result.stdout
    assert result.stdout.count("PASS") + result.stdout.count("MISS") == 2  # no degradations: two targets


def test_two_models_holding_out_the_same_film_are_refused(folds):
    result = runner.invoke(app, ["evaluate", "segment", str(folds[0]), str(folds[0]), "--data", str(CXR / "images"),
                                 "--masks", str(CXR / "masks"), "--kinds", "none", "--no-progress"])
    assert result.exit_code == 2 and "held out by two of the models" in result.stderr


def test_features_of_two_lungs_one_lung_and_nothing():
    prob = np.zeros((64, 64), np.float32)
    prob[10:50, 8:28] = 1.0
    one = chest_check.features(prob)
    prob[10:50, 36:56] = 1.0
    two = chest_check.features(prob)
    assert one["balance"] == 0 and two["balance"] == pytest.approx(1.0)
    assert two["lung_fraction"] == pytest.approx(2 * 40 * 20 / 64 ** 2) and two["confidence"] == 1.0
    flat = chest_check.features(np.full((8, 8), 0.5, np.float32))
    assert flat["confidence"] == 0 and flat["balance"] == 0


def test_check_names_each_number_out_of_range():
    ranges = chest_check.ranges_from([{"lung_fraction": f, "confidence": 0.9, "balance": 0.8}
                                      for f in np.linspace(0.2, 0.4, 201)])
    assert ranges["lung_fraction"][0] < 0.2 + 0.001 and ranges["lung_fraction"][1] > 0.4 - 0.001
    ok = chest_check.check({"lung_fraction": 0.3, "confidence": 0.9, "balance": 0.8}, ranges)
    bad = chest_check.check({"lung_fraction": 0.9, "confidence": 0.9, "balance": 0.0}, ranges)
    assert ok.ok and not bad.ok and len(bad.reasons) == 2
    assert "lung fraction 0.900 outside" in bad.note() and "not to be trusted" in bad.note()


def _with_ranges(model_path: Path, out: Path, ranges: dict) -> Path:
    model, info = checkpoint.load_model(model_path)
    preprocessing = {**info.preprocessing, "chest_check": {**info.preprocessing["chest_check"], "ranges": ranges}}
    checkpoint.save_model(out, model, preprocessing=preprocessing, training=info.training)
    return out


def test_segment_and_enhance_say_which_inputs_fail_the_check(folds, tmp_path):
    strict = _with_ranges(folds[0], tmp_path / "strict.safetensors", {"lung_fraction": [2.0, 3.0]})
    src = tmp_path / "in"
    src.mkdir()
    for name in ("53c9be49.png", "2168a917.png"):
        (src / name).write_bytes((CXR / "images" / name).read_bytes())
    result = runner.invoke(app, ["segment", str(src), str(tmp_path / "seg"), "--model", str(strict), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("does not look like a frontal chest radiograph") == 2
    rows = list(csv.DictReader(open(tmp_path / "seg/lung_areas.csv")))
    assert len(rows) == 2 and all(r["chest_check"].startswith("lung fraction") for r in rows)
    result = runner.invoke(app, ["enhance", str(src), str(tmp_path / "enh"), "--checker", str(strict),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("does not look like a frontal chest radiograph") == 2
    rows = list(csv.DictReader(open(tmp_path / "enh/chest_check.csv")))
    assert {Path(r["input"]).name for r in rows} == {"53c9be49.png", "2168a917.png"}
    assert all(r["chest_check"].startswith("lung fraction") for r in rows)
    lenient = _with_ranges(folds[0], tmp_path / "lenient.safetensors", {"lung_fraction": [-1.0, 2.0]})
    result = runner.invoke(app, ["segment", str(src), str(tmp_path / "seg2"), "--model", str(lenient),
                                 "--no-progress"])
    assert "does not look like" not in result.stderr
    assert {r["chest_check"] for r in csv.DictReader(open(tmp_path / "seg2/lung_areas.csv"))} == {"ok"}


def test_evaluate_chest_check_leaves_out_the_patients_the_model_saw(folds, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "extremity.dcm").write_bytes((SAMPLE / "dicom/extremity_cr.dcm").read_bytes())
    result = runner.invoke(app, ["evaluate", "chest-check", str(folds[0]), "--chest", str(CXR / "images"),
                                 "--other", str(other), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    held = set(read_model_info(folds[0]).training["test_images"])
    assert {Path(r["image"]).name for r in report["chest"]} == held
    assert report["chest_left_out"] == 8 - len(held) and len(report["other"]) == 1
    assert 0 <= report["false_alarm_rate"] <= 1 and report["detection_rate"] in (0.0, 1.0)


def test_tuned_baselines_pick_from_the_grid_and_smooth_more_for_more_noise():
    from medvae.tasks.cxr.evaluate_enhance import GRID, tune_baselines
    from medvae.tasks.cxr.train_enhance import read_unit

    films = [read_unit(CXR / "images" / n) for n in ("53c9be49.png", "2168a917.png")]
    params = tune_baselines(films, ("noise",), (0.1, 0.9), seed=0)
    for key, chosen in params.items():
        assert all(chosen[m] in GRID[m] for m in GRID)
    assert params[("noise", 0.9)]["gaussian"] >= params[("noise", 0.1)]["gaussian"]
