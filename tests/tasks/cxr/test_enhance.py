"""medvae enhance / segment: formats, geometry and dtype kept, batch failures, CSV areas, DICOM SEG, errors."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medvae import checkpoint
from medvae.io.images import Image, read_image, write_image
from medvae.models.enhancer import EnhancerConfig, EnhancerModel
from medvae.models.resunetpp import SegmenterConfig, SegmenterModel
from medvae.tasks.cxr.enhance import EnhanceOptions, enhance, enhance_array, enhance_image
from medvae.data.intensity import from_unit, to_unit
from medvae.tasks.cxr.segment import lung_labels, segment
from medvae_cli.main import app

SAMPLE = Path(__file__).resolve().parents[3] / "sample_data"
runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small untrained models (these tests check plumbing, not quality)."""
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models")
    enhancer = folder / "enhancer.safetensors"
    checkpoint.save_model(enhancer, EnhancerModel(EnhancerConfig(channels=(4, 8, 16), latent_channels=2,
                                                                 norm="BATCH")).eval(),
                          preprocessing={"pipeline": "enhance"})
    segmenter = folder / "segmenter.safetensors"
    checkpoint.save_model(segmenter, SegmenterModel(SegmenterConfig(channels=(4, 8, 16))).eval(),
                          preprocessing={"pipeline": "segment", "size": 64})
    return enhancer, segmenter


def _dciodvfy_errors(path: Path) -> list[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_unit_round_trip_keeps_dtype_and_range(dtype):
    rng = np.random.default_rng(0)
    array = rng.integers(3, 200, (17, 9)).astype(dtype)
    unit, low, high = to_unit(array)
    assert unit.min() == 0 and unit.max() == 1
    back = from_unit(unit, low, high, array.dtype)
    assert back.dtype == array.dtype and np.allclose(back, array, atol=1e-4)


def test_tiles_cover_any_size_and_agree_with_one_pass(models):
    net, _ = checkpoint.load_model(models[0])
    rng = np.random.default_rng(0)
    image = rng.random((75, 53)).astype(np.float32)  # not a multiple of the model's 4
    whole = enhance_array(net, image, tile=256)
    tiled = enhance_array(net, image, tile=32, overlap=8)
    assert whole.shape == tiled.shape == image.shape
    assert 0 <= tiled.min() and tiled.max() <= 1
    # batch norm in eval mode and convolutions: tiles differ from one pass only near tile borders
    assert np.abs(whole - tiled).mean() < 0.01


@pytest.mark.parametrize("size", [1024, 2048, 1955, 230, 3000, 77])
def test_tiling_uses_the_fewest_tiles_that_overlap(size):
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    from medvae.tasks.cxr.enhance import tiling

    roi, fractions = tiling((size, 100), 1024, 64, 8)
    assert all(r % 8 == 0 for r in roi)
    windows = dense_patch_slices((size, 100), roi, _get_scan_interval((size, 100), roi, 2, fractions))
    starts = sorted({w[0].start for w in windows})
    assert len(starts) == -(-size // 1024)
    assert all(b - a <= roi[0] - 64 for a, b in zip(starts, starts[1:]))  # neighbours share >= 64 pixels


def test_bad_tile_is_a_usage_error(models):
    from medvae.errors import UsageError

    net, _ = checkpoint.load_model(models[0])
    with pytest.raises(UsageError, match="tile 6 must be at least 8"):
        enhance_array(net, np.zeros((40, 40), np.float32), tile=6)


@pytest.mark.parametrize("name", ["png/chest_8bit.png", "png/extremity_16bit.png", "dicom/chest_cr.dcm",
                                  "dicom/extremity_cr.dcm"])
def test_output_keeps_format_size_dtype_and_geometry(models, tmp_path, name):
    src = SAMPLE / name
    out = tmp_path / ("out" + Path(name).suffix)
    report = enhance(src, out, model=models[0], progress=False)
    assert report.exit_code == 0 and out.is_file()
    before, after = read_image(src), read_image(out)
    assert after.array.shape == before.array.shape and after.array.dtype == before.array.dtype
    assert np.allclose(after.affine, before.affine)
    assert after.array.min() >= before.array.min() and after.array.max() <= before.array.max()
    if name.endswith(".png"):
        assert after.bits == before.bits
    else:
        import pydicom

        a, b = pydicom.dcmread(out), pydicom.dcmread(src)
        assert (a.Rows, a.Columns, a.BitsAllocated) == (b.Rows, b.Columns, 16)
        assert b.PhotometricInterpretation == "MONOCHROME1"  # inverted on read, written consistently
        assert "DERIVED" in a.ImageType and a.SeriesInstanceUID != b.SeriesInstanceUID
        if shutil.which("dciodvfy"):
            assert _dciodvfy_errors(out) == []


def test_one_file_to_another_format(models, tmp_path):
    report = enhance(SAMPLE / "png/chest_8bit.png", tmp_path / "chest.dcm", model=models[0], progress=False)
    assert report.exit_code == 0
    out = read_image(tmp_path / "chest.dcm")
    assert out.format == "dicom" and out.array.shape == read_image(SAMPLE / "png/chest_8bit.png").array.shape


def test_folder_mirrors_tree_skips_a_bad_file_and_writes_compare_pairs(models, tmp_path):
    data = tmp_path / "in"
    (data / "a").mkdir(parents=True)
    shutil.copy(SAMPLE / "png/chest_8bit.png", data / "a/chest.png")
    shutil.copy(SAMPLE / "dicom/chest_cr.dcm", data / "IM0001")  # DICOM without a suffix
    (data / "broken.png").write_bytes(b"not a png")
    result = runner.invoke(app, ["enhance", str(data), str(tmp_path / "out"), "--model", str(models[0]),
                                 "--compare", str(tmp_path / "cmp"), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "broken.png" in result.stderr and "enhanced 2" in result.stderr  # a failure: the summary is on stderr
    assert (tmp_path / "out/a/chest.png").is_file() and (tmp_path / "out/IM0001").is_file()
    assert read_image(tmp_path / "out/IM0001").format == "dicom"
    for tag in ("before", "after"):
        assert (tmp_path / f"cmp/a/chest.png.{tag}.png").is_file()
    again = runner.invoke(app, ["enhance", str(data), str(tmp_path / "out"), "--model", str(models[0]), "--no-progress"])
    assert again.exit_code == 1 and "skipped 2 already done" in again.stderr  # broken.png fails again
    for name in ("a/chest.png", "IM0001"):
        assert f"note: {tmp_path / 'out' / name}: the output exists; skipped (--overwrite redoes it)" in again.stderr


def test_enhance_refuses_output_inside_input_and_a_model_of_another_kind(models, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(SAMPLE / "png/chest_8bit.png", data / "chest.png")
    inside = runner.invoke(app, ["enhance", str(data), str(data / "out"), "--model", str(models[0])])
    assert inside.exit_code == 2 and "inside the input folder" in inside.stderr
    wrong = runner.invoke(app, ["enhance", str(data), str(tmp_path / "o"), "--model", str(models[1])])
    assert wrong.exit_code == 2 and "--model" in wrong.stderr and "segmenter" in wrong.stderr


def test_volume_input_fails_alone(models, tmp_path):
    image = read_image(SAMPLE / "nifti/mni152_t1_4mm.nii.gz")
    net, _ = checkpoint.load_model(models[0])
    from medvae.errors import InputError

    with pytest.raises(InputError, match="enhance takes 2-D radiographs"):
        enhance_image(net, image)


def test_lung_labels_split_by_side_and_keep_two_largest():
    prob = np.zeros((60, 40), np.float32)
    prob[5:25, 5:35] = 0.9  # viewer's left: the patient's right lung
    prob[35:55, 8:30] = 0.8
    prob[28:30, 2:4] = 0.99  # a speck
    labels = lung_labels(prob)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[5:25, 5:35] == 1).all() and (labels[35:55, 8:30] == 2).all() and labels[28, 2] == 0


def test_lung_labels_fill_holes_and_count_regions_4_connected():
    prob = np.zeros((60, 40), np.float32)
    prob[5:25, 5:35] = 0.9
    prob[10:14, 10:14] = 0.1  # a hole in the right lung: filled
    prob[35:55, 8:30] = 0.8
    prob[25, 35] = prob[26, 36] = prob[27, 37] = 0.9  # a diagonal chain touching the right lung only at a corner
    labels = lung_labels(prob)
    assert (labels[5:25, 5:35] == 1).all() and (labels[35:55, 8:30] == 2).all()
    assert labels[25, 35] == labels[26, 36] == 0  # not 4-connected to a lung: a third region, dropped
    assert lung_labels(np.zeros((8, 8), np.float32)).max() == 0


@pytest.mark.parametrize("fmt", ["png", "nii"])
def test_segment_writes_masks_overlays_and_areas_that_match(models, tmp_path, fmt):
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(SAMPLE / "png/chest_8bit.png", data / "chest.png")
    report, csv_path = segment(data, tmp_path / "out", model=models[1], fmt=fmt, progress=False)
    assert report.exit_code == 0
    suffix = ".png" if fmt == "png" else ".nii.gz"
    mask = read_image(tmp_path / "out" / f"chest{suffix}").array
    assert mask.shape[:2] == read_image(data / "chest.png").array.shape
    assert (tmp_path / "out/chest.overlay.png").is_file()
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 1
    labels = mask.reshape(mask.shape[:2]) if fmt == "nii" else lung_labels((mask > 0).astype(np.float32))
    assert int(rows[0]["right_lung_px"]) == int((labels == 1).sum())
    assert int(rows[0]["left_lung_px"]) == int((labels == 2).sum())
    assert rows[0]["right_lung_cm2"] == ""  # a PNG has no pixel size


def test_segment_areas_in_cm2_from_pixel_spacing(models, tmp_path):
    image = Image(array=(np.random.default_rng(0).random((64, 64)) * 4000).astype(np.uint16), format="nifti",
                  affine=np.diag([0.5, 0.5, 1, 1]), spacing_known=True)
    write_image(image, tmp_path / "in/cxr.nii.gz")
    _, csv_path = segment(tmp_path / "in", tmp_path / "out", model=models[1], fmt="nii", progress=False)
    row = next(csv.DictReader(open(csv_path)))
    labels = read_image(tmp_path / "out/cxr.nii.gz").array.reshape(64, 64)
    assert float(row["right_lung_cm2"]) == pytest.approx((labels == 1).sum() * 0.25 / 100, abs=1e-3)


def test_segment_dicom_seg_for_dicom_inputs_only(models, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(SAMPLE / "dicom/chest_cr.dcm", data / "chest.dcm")
    shutil.copy(SAMPLE / "png/chest_8bit.png", data / "chest8.png")
    result = runner.invoke(app, ["segment", str(data), str(tmp_path / "out"), "--model", str(models[1]),
                                 "--format", "dcm", "--enhance", "--enhancer", str(models[0]), "--no-progress"])
    assert result.exit_code == 1
    assert "chest8.png" in result.stderr and "needs a DICOM source" in result.stderr
    seg = tmp_path / "out/chest.dcm"
    import pydicom

    ds = pydicom.dcmread(seg)
    assert ds.Modality == "SEG" and ds.SegmentSequence[1].SegmentLabel == "Left lung"
    if shutil.which("dciodvfy"):
        assert _dciodvfy_errors(seg) == []
    # medvae info describes the SEG (segments, frames) instead of refusing it as "not an image"
    described = runner.invoke(app, ["info", str(seg)])
    assert described.exit_code == 0, described.output
    assert "DICOM Segmentation (binary), 2 segments in " in described.stdout
    assert "segment 1: Right lung (SCT 3341006)" in described.stdout and "segment 2: Left lung" in described.stdout
    info = json.loads(runner.invoke(app, ["info", str(seg), "--json"]).stdout)
    assert info["type"] == "segmentation" and info["referenced_images"] == 1
    assert [s["label"] for s in info["segments"]] == ["Right lung", "Left lung"]
    # an empty segment (this untrained model may find no left lung) has no frame in the file
    assert info["frames"] == sum(s["frames"] for s in info["segments"]) >= 1
    assert [info["columns"], info["rows"]] == list(reversed(ds.pixel_array.shape[-2:]))
    assert sum(s["pixels"] for s in info["segments"]) == int((ds.pixel_array > 0).sum())


def test_segment_bad_format_is_usage_error(models, tmp_path):
    result = runner.invoke(app, ["segment", str(SAMPLE / "png/chest_8bit.png"), str(tmp_path / "o"),
                                 "--model", str(models[1]), "--format", "jpg"])
    assert result.exit_code == 2 and "--format 'jpg'" in result.stderr


def test_a_failed_write_is_reported_for_its_own_input(models, tmp_path, monkeypatch):
    import importlib

    module = importlib.import_module("medvae.tasks.cxr.enhance")  # the package exports the function of that name

    data = tmp_path / "in"
    data.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(SAMPLE / "png/chest_8bit.png", data / f"{name}.png")
    real = module.write_compare

    def failing(before, after, folder, name):
        if name == "b.png":
            raise OSError("disk full")
        real(before, after, folder, name)

    monkeypatch.setattr(module, "write_compare", failing)
    report = enhance(data, tmp_path / "out", model=models[0], options=EnhanceOptions(compare=tmp_path / "cmp"),
                     progress=False)
    assert [p.name for p, _ in report.failed] == ["b.png"] and "disk full" in report.failed[0][1]
    assert sorted(p.name for p, _ in report.done) == ["a.png", "c.png"]


def test_outputs_never_land_on_inputs(models, tmp_path):
    data = tmp_path / "scans"
    data.mkdir()
    shutil.copy(SAMPLE / "png/chest_8bit.png", data / "a.png")
    before = (data / "a.png").read_bytes()
    # a file input segmented into its own folder would write a.png over itself
    result = runner.invoke(app, ["segment", str(data / "a.png"), str(data), "--model", str(models[1]), "--overwrite"])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: OUTPUT {data}: the output {data / 'a.png'} "
                                                              "would be the input itself")
    same = runner.invoke(app, ["enhance", str(data / "a.png"), str(data / "a.png"), "--model", str(models[0])])
    assert same.exit_code == 2 and "is the input" in same.stderr
    compare = runner.invoke(app, ["enhance", str(data), str(tmp_path / "out"), "--model", str(models[0]),
                                  "--compare", str(data / "cmp")])
    assert compare.exit_code == 2 and "inside the input folder" in compare.stderr
    assert (data / "a.png").read_bytes() == before and not (data / "cmp").exists()


def test_tiles_never_larger_than_needed():
    from medvae.tasks.cxr.enhance import tiling

    roi, fractions = tiling((259, 300), 256, 127, 8)  # two tiles would each cover the axis: one is enough
    assert all(0 <= f < 1 for f in fractions) and roi[0] == 264


def test_constant_and_large_float_images_survive_the_unit_round_trip():
    constant = np.full((5, 4), 5.0)
    assert np.array_equal(from_unit(*to_unit(constant), constant.dtype), constant)
    fine = 1e6 + np.linspace(0, 0.01, 20).reshape(4, 5)
    unit, low, high = to_unit(fine)
    assert len(np.unique(unit)) == 20


def test_named_files_are_never_held_out(tmp_path):
    from medvae.tasks.cxr.train_enhance import image_split

    (tmp_path / "ds/sub").mkdir(parents=True)
    for i in range(6):
        shutil.copy(SAMPLE / "png/chest_8bit.png", tmp_path / f"ds/sub/i{i}.png")
    train, test = image_split((str(tmp_path / "ds"), str(tmp_path / "ds/sub"), str(tmp_path / "ds/sub/i4.png")),
                              0.2, 0)
    assert len(train) + len(test) == 6 and not set(train) & set(test)
    assert (tmp_path / "ds/sub/i4.png").resolve() in train


def test_lung_sides_follow_dicom_patient_orientation():
    from types import SimpleNamespace

    from medvae.tasks.cxr.segment import rows_point_right

    prob = np.zeros((60, 40), np.float32)
    prob[5:25, 5:35] = 0.9
    prob[35:55, 8:30] = 0.8
    assert lung_labels(prob, right_at_small_x=False)[10, 10] == 2
    image = SimpleNamespace(dicom=[{"PatientOrientation": ["R", "F"]}])
    assert rows_point_right(image) and not rows_point_right(SimpleNamespace(dicom=[{"PatientOrientation": ["L", "F"]}]))
    assert not rows_point_right(SimpleNamespace(dicom=[]))


def test_segment_skips_existing_masks_with_a_note_and_keeps_their_areas(models, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    for name in ("a", "b"):
        shutil.copy(SAMPLE / "png/chest_8bit.png", data / f"{name}.png")
    args = ["segment", str(data), str(tmp_path / "out"), "--model", str(models[1]), "--no-progress"]
    assert runner.invoke(app, args).exit_code == 0
    first = (tmp_path / "out" / "lung_areas.csv").read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "segmented 0, skipped 2 already done" in again.stdout
    for name in ("a", "b"):
        assert f"note: {tmp_path / 'out' / name}.png: the output exists; skipped (--overwrite redoes it)" in again.stderr
    assert (tmp_path / "out" / "lung_areas.csv").read_text() == first  # the table still lists both
    one = runner.invoke(app, ["segment", str(data / "a.png"), str(tmp_path / "out"), "--model", str(models[1])])
    assert one.exit_code == 0 and one.stderr.strip().endswith(
        f"note: {tmp_path / 'out' / 'a.png'}: the output exists; skipped (--overwrite redoes it)")
