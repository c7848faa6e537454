"""``medvae convert`` and ``medvae info`` on images, end to end through the command line."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from medvae_cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def lung_contrast(picture: np.ndarray) -> tuple[float, float]:
    """Mean grey of the two lung fields and of the mediastinum/spine strip of a PA chest film."""
    h, w = picture.shape
    rows = slice(int(0.3 * h), int(0.6 * h))
    lungs = np.r_[picture[rows, int(0.2 * w):int(0.35 * w)].ravel(), picture[rows, int(0.65 * w):int(0.8 * w)].ravel()]
    return float(lungs.mean()), float(picture[rows, int(0.45 * w):int(0.55 * w)].mean())


def test_chest_radiograph_to_png_looks_right(tmp_path, dicom_data):
    """The real MONOCHROME1 chest CR from pydicom-data: upright (not transposed), lungs dark, bone bright."""
    src = dicom_data / "RG1_UNCR.dcm"
    result = invoke("convert", src, tmp_path / "chest.png")
    assert result.exit_code == 0, result.output
    png = PILImage.open(tmp_path / "chest.png")
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    assert png.size == (ds.Columns, ds.Rows) and png.mode == "L"  # PIL's size is (width, height)
    lungs, mediastinum = lung_contrast(np.asarray(png).astype(float))
    assert lungs + 40 < mediastinum, (lungs, mediastinum)
    assert "MONOCHROME1 inverted" in result.stderr and "mapped to 0..255" in result.stderr
    # the raw stored pixels have it the other way round: that is what inversion fixes
    raw_lungs, raw_mediastinum = lung_contrast(pydicom.dcmread(src).pixel_array.astype(float))
    assert raw_lungs > raw_mediastinum


def test_folder_with_broken_files(tmp_path, sample_dir):
    src = tmp_path / "in"
    (src / "nested").mkdir(parents=True)
    shutil.copy(sample_dir / "dicom" / "chest_cr.dcm", src / "chest.dcm")
    shutil.copy(sample_dir / "dicom" / "chest_cr_j2k.dcm", src / "nested" / "chest_j2k.dcm")
    shutil.copy(sample_dir / "png" / "extremity_16bit.png", src / "nested" / "knee.png")
    (src / "nested" / "empty.dcm").write_bytes(b"")
    data = (sample_dir / "dicom" / "extremity_cr.dcm").read_bytes()
    (src / "truncated.dcm").write_bytes(data[: len(data) // 2])
    shutil.copy(sample_dir / "png" / "chest_8bit.png", src / "misnamed.dcm")
    result = invoke("convert", src, tmp_path / "out", "--format", "png", "--no-progress")
    assert result.exit_code == 1
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert made == ["chest.png", "nested/chest_j2k.png", "nested/knee.png"]
    err = result.stderr
    assert "converted 3, 3 failed:" in err
    assert f"{src / 'nested' / 'empty.dcm'}: the file is empty" in err
    assert f"{src / 'truncated.dcm'}: the pixel data is truncated or cannot be decoded" in err
    assert f"{src / 'misnamed.dcm'}: named as DICOM but holds PNG data" in err
    assert err.strip().splitlines()[-1] == "error: 3 of 6 inputs failed (listed above)"
    # the same pixels through JPEG 2000 and uncompressed; the 16-bit PNG was copied as it is
    a, b = (np.asarray(PILImage.open(tmp_path / "out" / n)) for n in ("chest.png", "nested/chest_j2k.png"))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(PILImage.open(tmp_path / "out" / "nested" / "knee.png")),
                                  np.asarray(PILImage.open(src / "nested" / "knee.png")))
    # run again: everything done is skipped, the failures are reported again
    again = invoke("convert", src, tmp_path / "out", "--format", "png", "--no-progress")
    assert again.exit_code == 1 and "converted 0, skipped 3 already done" in again.stderr
    # each skipped output is named in a note, as a command with one output says it
    for name in made:
        assert f"note: {tmp_path / 'out' / name}: the output exists; skipped (--overwrite redoes it)" in again.stderr


def test_nifti_to_nifti_keeps_the_affine(tmp_path, sample_dir):
    src = sample_dir / "nifti" / "mni152_t1_4mm.nii.gz"
    result = invoke("convert", src, tmp_path / "t1.nii.gz")
    assert result.exit_code == 0 and result.stdout.strip() == f"wrote {tmp_path / 't1.nii.gz'}"
    a, b = nib.load(src), nib.load(tmp_path / "t1.nii.gz")
    np.testing.assert_array_equal(a.affine, b.affine)
    np.testing.assert_array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))
    assert a.get_data_dtype() == b.get_data_dtype()


def test_series_folder_to_nifti_and_back_to_dicom(tmp_path, sample_dir):
    result = invoke("convert", sample_dir / "dicom" / "ct_series", tmp_path / "ct.nii.gz", "--series")
    assert result.exit_code == 0, result.output
    assert nib.load(tmp_path / "ct.nii.gz").shape == (16, 16, 5)
    result = invoke("convert", tmp_path / "ct.nii.gz", tmp_path / "ct.dcm")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "ct").glob("*.dcm"))) == 5  # a volume becomes a series folder


def test_percentile_to_nifti_gives_unit_floats(tmp_path, sample_dir):
    result = invoke("convert", sample_dir / "dicom" / "chest_cr.dcm", tmp_path / "c.nii.gz", "--normalize", "percentile")
    assert result.exit_code == 0
    data = nib.load(tmp_path / "c.nii.gz").get_fdata()
    assert data.min() == 0 and data.max() == 1


def test_sixteen_bit_png_output(tmp_path, sample_dir):
    result = invoke("convert", sample_dir / "dicom" / "chest_cr.dcm", tmp_path / "c.png", "--bits", "16", "--normalize", "percentile")
    assert result.exit_code == 0
    assert np.asarray(PILImage.open(tmp_path / "c.png")).max() == 65535


@pytest.mark.parametrize("args, message", [
    (["--format", "bmp"], "--format 'bmp' is not one medvae writes"),
    (["--normalize", "gamma"], "--normalize 'gamma' is not one of"),
    (["--bits", "12"], "--bits must be 8 or 16"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, sample_dir, args, message):
    result = invoke("convert", sample_dir / "png" / "chest_8bit.png", tmp_path / "out", *args)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors(tmp_path, sample_dir):
    src = tmp_path / "in"
    shutil.copytree(sample_dir / "png", src)
    inside = invoke("convert", src, src / "converted", "--format", "nii")
    assert inside.exit_code == 2 and "never writes into its inputs" in inside.stderr
    no_format = invoke("convert", src, tmp_path / "out")
    assert no_format.exit_code == 2 and "--format" in no_format.stderr
    folder_to_file = invoke("convert", src, tmp_path / "x.png")
    assert folder_to_file.exit_code == 2 and "must be a folder" in folder_to_file.stderr
    assert folder_to_file.stderr.startswith(f"error: OUTPUT {tmp_path / 'x.png'}: the input is a folder")
    clash = invoke("convert", src / "chest_8bit.png", tmp_path / "x.png", "--format", "nii")
    assert clash.exit_code == 2 and "does not match" in clash.stderr
    missing = invoke("convert", tmp_path / "nope.dcm", tmp_path / "x.png")
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_a_failed_single_file_exits_1(tmp_path):
    (tmp_path / "bad.dcm").write_text("hello")
    result = invoke("convert", tmp_path / "bad.dcm", tmp_path / "x.png")
    assert result.exit_code == 1 and "not an image file" in result.stderr
    assert not (tmp_path / "x.png").exists() and not list(tmp_path.glob(".x*"))  # no half-written file


def test_png_with_values_it_cannot_hold(tmp_path, sample_dir):
    result = invoke("convert", sample_dir / "dicom" / "ct_series", tmp_path / "ct.png", "--series", "--normalize", "none")
    assert result.exit_code == 1 and "volume" in result.stderr


def test_info_on_images(sample_dir):
    result = invoke("info", sample_dir / "dicom" / "chest_cr.dcm")
    assert result.exit_code == 0
    out = result.stdout
    assert "DICOM image, 230 x 244 (x, y), uint16" in out and "CR, Computed Radiography Image Storage, MONOCHROME1" in out
    assert "spacing: unknown" in out and "window: center 17767, width 30000" in out
    assert "CompressedSamples" not in out  # no patient name
    series = invoke("info", sample_dir / "dicom" / "ct_series", "--json")
    import json

    info = json.loads(series.stdout)
    assert info["shape"] == [16, 16, 5] and info["dicom"]["files"] == 5 and info["orientation"] == "LPS"
    assert info["spacing_mm"] == pytest.approx([0.488281, 0.488281, 2.5])
    nifti = invoke("info", sample_dir / "nifti" / "mni152_t1_4mm.nii.gz")
    assert "spacing: 4 x 4 x 4 mm, orientation RAS" in nifti.stdout


def test_help_lists_convert_without_importing_torch():
    import subprocess
    import sys

    code = "import sys; from medvae_cli.main import app; sys.argv=['medvae','convert','--help']\n" \
           "try:\n    app()\nexcept SystemExit:\n    pass\n" \
           "assert 'torch' not in sys.modules and 'monai' not in sys.modules and 'pydicom' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--normalize" in done.stdout


def test_voi_lut_sequence_is_applied_for_display(tmp_path, dicom_data):
    from pydicom.pixels import apply_voi_lut

    ds = pydicom.dcmread(dicom_data / "vlut_04.dcm")
    assert "VOILUTSequence" in ds and "WindowCenter" not in ds
    top = 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1
    expected = np.round(np.clip(apply_voi_lut(ds.pixel_array, ds) / top, 0, 1) * 255).astype(np.uint8)
    result = invoke("convert", dicom_data / "vlut_04.dcm", tmp_path / "v.png")
    assert result.exit_code == 0 and "VOI LUT applied" in result.stderr
    np.testing.assert_array_equal(np.asarray(PILImage.open(tmp_path / "v.png")), expected)


def test_conversion_notes_travel_with_the_output(tmp_path, dicom_data):
    result = invoke("convert", dicom_data / "US1_UNCR.dcm", tmp_path / "us.png")
    assert result.exit_code == 0 and "converted to grayscale" in result.stderr
    assert "converted to grayscale" in PILImage.open(tmp_path / "us.png").text["Description"]
    result = invoke("convert", dicom_data / "US1_UNCR.dcm", tmp_path / "us.dcm")
    assert result.exit_code == 0
    assert "converted to grayscale" in pydicom.dcmread(tmp_path / "us.dcm").ImageComments
    result = invoke("convert", dicom_data / "emri_small.dcm", tmp_path / "mr.nii.gz")
    assert b"10 frames" in nib.load(tmp_path / "mr.nii.gz").header["descrip"].tobytes()


def test_a_single_existing_output_is_skipped(tmp_path, sample_dir):
    invoke("convert", sample_dir / "png" / "chest_8bit.png", tmp_path / "c.npy")
    again = invoke("convert", sample_dir / "png" / "chest_8bit.png", tmp_path / "c.npy")
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.strip() == f"note: {tmp_path / 'c.npy'}: the output exists; skipped (--overwrite redoes it)"
    redo = invoke("convert", sample_dir / "png" / "chest_8bit.png", tmp_path / "c.npy", "--overwrite")
    assert redo.exit_code == 0 and redo.stdout.strip() == f"wrote {tmp_path / 'c.npy'}"


def test_a_batch_skips_each_existing_output_with_a_note(tmp_path, sample_dir):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        shutil.copy(sample_dir / "png" / "chest_8bit.png", src / f"{name}.png")
    assert invoke("convert", src, tmp_path / "out", "--format", "npy", "--no-progress").exit_code == 0
    (src / "c.png").write_bytes((src / "a.png").read_bytes())  # a new input: converted, the others skipped
    again = invoke("convert", src, tmp_path / "out", "--format", "npy", "--no-progress")
    assert again.exit_code == 0, again.output
    assert "converted 1, skipped 2 already done" in again.stdout
    notes = [line for line in again.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {tmp_path / 'out' / n}.npy: the output exists; skipped (--overwrite redoes it)"
                     for n in ("a", "b")]


# ---------------------------------------------------------------- cases found in review
def test_overwrite_never_deletes_a_folder_medvae_did_not_write(tmp_path, sample_dir):
    patient = tmp_path / "patient1"
    shutil.copytree(sample_dir / "dicom" / "ct_series", patient)
    (patient / "notes.txt").write_text("keep me")
    assert invoke("convert", patient, tmp_path / "patient1.nii.gz", "--series").exit_code == 0
    result = invoke("convert", tmp_path / "patient1.nii.gz", tmp_path / "patient1.dcm", "--overwrite")
    assert result.exit_code == 1 and "not a DICOM series medvae wrote" in result.stderr
    assert (patient / "notes.txt").read_text() == "keep me" and len(list(patient.iterdir())) == 6
    # its own series folder it does replace, and it says which folder it wrote
    first = invoke("convert", tmp_path / "patient1.nii.gz", tmp_path / "ct.dcm")
    assert first.exit_code == 0 and first.stdout.strip() == f"wrote {tmp_path / 'ct'}"
    skipped = invoke("convert", tmp_path / "patient1.nii.gz", tmp_path / "ct.dcm")
    assert skipped.exit_code == 0 and f"note: {tmp_path / 'ct'}: the output exists" in skipped.stderr
    again = invoke("convert", tmp_path / "patient1.nii.gz", tmp_path / "ct.dcm", "--overwrite")
    assert again.exit_code == 0 and len(list((tmp_path / "ct").iterdir())) == 5


def test_a_file_and_a_folder_of_the_same_name_both_convert(tmp_path, sample_dir):
    src = tmp_path / "in"
    (src / "x").mkdir(parents=True)
    shutil.copy(sample_dir / "png" / "chest_8bit.png", src / "x.png")
    shutil.copy(sample_dir / "png" / "chest_8bit.png", src / "x" / "y.png")
    result = invoke("convert", src, tmp_path / "out", "--format", "dcm", "--no-progress")
    assert result.exit_code == 0 and "converted 2" in result.stdout
    assert (tmp_path / "out" / "x.dcm").is_file() and (tmp_path / "out" / "x" / "y.dcm").is_file()


def test_a_failed_input_does_not_block_a_good_one_of_the_same_name(tmp_path, sample_dir):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(sample_dir / "png" / "chest_8bit.png", src / "x.jpg")  # PNG data named .jpg: refused
    shutil.copy(sample_dir / "png" / "chest_8bit.png", src / "x.png")
    result = invoke("convert", src, tmp_path / "out", "--format", "nii", "--no-progress")
    assert result.exit_code == 1 and (tmp_path / "out" / "x.nii.gz").exists()
    assert "converted 1, 1 failed" in result.stderr and "named as JPEG but holds PNG" in result.stderr


def test_input_as_output_is_bad_usage(tmp_path, sample_dir):
    shutil.copy(sample_dir / "png" / "chest_8bit.png", tmp_path / "c.png")
    for extra in ([], ["--overwrite"]):
        result = invoke("convert", tmp_path / "c.png", tmp_path / "c.png", *extra)
        assert result.exit_code == 2 and "never overwrites an input" in result.stderr


def test_derived_dicom_keeps_the_display_window(tmp_path, sample_dir):
    assert invoke("convert", sample_dir / "dicom" / "chest_cr.dcm", tmp_path / "c.dcm").exit_code == 0
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (2**15 - 1 - 15000, 30000)  # inverted with the pixels


def test_usage_errors_name_what_the_user_typed(tmp_path, sample_dir):
    src = tmp_path / "in"
    shutil.copytree(sample_dir / "png", src)
    inside = invoke("convert", src, src / "out", "--format", "png")
    assert inside.stderr.startswith("error: OUTPUT "), inside.stderr  # the argument, not an invented --output
    bad = invoke("convert", src, tmp_path / "o", "--format", "bmp")
    assert bad.stderr.startswith("error: --format 'bmp'"), bad.stderr


def test_a_message_that_names_no_parameter_is_left_alone():
    from typer.testing import CliRunner

    from medvae_cli._run import run_task
    from medvae.errors import UsageError

    import typer

    app = typer.Typer()

    @app.command()
    def cmd(the: int = 1) -> None:
        def fn():
            raise UsageError("the SSIM loss needs patches of at least 11 voxels a side")
        run_task(fn)

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2 and "error: the SSIM loss" in result.stderr, result.stderr
