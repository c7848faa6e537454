"""Derived DICOM writing (medvae.io.dicom): headers, pixels, geometry, and validity by dciodvfy and dcmtk.

Each source kind is written once (a module-scoped fixture) and then checked from several sides: pydicom
re-reads the stored pixels, medvae's own reader gives back the same image, and the DICOM toolkits accept
the files. Sources come from real data: ``pydicom-data`` (chest CR, CT, MR, ultrasound), pydicom's own test
files and ``sample_data/``.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

import medvae  # noqa: E402
from medvae.io.dicom import CR, CT, MR, SC, encode_pixels, write_dicom  # noqa: E402
from medvae.io.images import Image, read_image, write_image  # noqa: E402
from medvae.errors import InputError, OutputExists  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
CT_SERIES = SAMPLES / "dicom" / "ct_series"


def pydicom_data(name: str) -> Path:
    """A file that the ``pydicom-data`` package installs (skip the test if it is not installed)."""
    data_store = pytest.importorskip("data_store", reason="needs pip install pydicom-data")
    path = Path(data_store.__file__).parent / "data" / name
    if not path.exists():
        pytest.skip(f"pydicom-data has no {name}")
    return path


def pydicom_test_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file(name))


def png_like() -> Image:
    """An 8-bit image as read from a PNG: no DICOM source, no pixel size."""
    rng = np.random.default_rng(0)
    return Image(array=rng.integers(0, 256, (40, 30)).astype(np.uint8), format="png", bits=8,
                 value_range=(0.0, 255.0))


@dataclass(frozen=True)
class Case:
    """One kind of source: how to get it, how to write it, and what should come out."""

    load: object  # () -> path or Image
    sop_class: str
    synthetic: bool = False
    operation: str = "enhance"
    direct: bool = False  # write with write_dicom rather than write_image
    geometry: bool = False  # the affine must survive


CASES = {
    "cr_chest": Case(lambda: pydicom_data("RG1_UNCR.dcm"), CR),
    "ct": Case(lambda: pydicom_data("693_UNCR.dcm"), CT, geometry=True, direct=True),
    "mr_float": Case(lambda: pydicom_data("MR2_UNCR.dcm"), MR, geometry=True),
    "mr_small": Case(lambda: pydicom_test_file("MR_small.dcm"), MR, synthetic=True, operation="synthesize",
                     geometry=True),
    "us_rgb": Case(lambda: pydicom_data("US1_UNCR.dcm"), SC),
    "png_no_source": Case(png_like, SC, synthetic=True, operation="generate", direct=True),
    "nifti_volume": Case(lambda: SAMPLES / "nifti" / "mni152_t1_4mm.nii.gz", SC, synthetic=True,
                         operation="synthesize", geometry=True),
    "ct_series": Case(lambda: CT_SERIES, CT, geometry=True),
}


@dataclass
class Written:
    name: str
    case: Case
    source: Image
    out: Path  # the file, or the series folder
    files: list[Path]  # in slice order

    @property
    def headers(self):
        return [pydicom.dcmread(f) for f in self.files]

    def slice_values(self, k: int) -> np.ndarray:
        """The source's values for written file ``k``, as (rows, columns)."""
        array = self.source.array
        return (array[:, :, k] if array.ndim == 3 else array).T


@pytest.fixture(scope="module", params=list(CASES))
def written(request, tmp_path_factory) -> Written:
    case = CASES[request.param]
    loaded = case.load()
    source = loaded if isinstance(loaded, Image) else read_image(loaded)
    path = tmp_path_factory.mktemp(request.param) / "out.dcm"
    if case.direct:
        out = write_dicom(source, path, operation=case.operation, synthetic=case.synthetic)
    else:
        out = write_image(source, path, operation=case.operation, synthetic=case.synthetic)
    files = sorted(out.iterdir()) if out.is_dir() else [out]
    return Written(request.param, case, source, out, files)


def source_header(w: Written, k: int):
    return w.source.dicom[k if len(w.source.dicom) > 1 else 0] if w.source.dicom else None


# ---------------------------------------------------------------------------- pixels
def test_stored_pixels_round_trip(written):
    """pydicom's stored pixels, through slope and intercept, are the values that were written."""
    for k, ds in enumerate(written.headers):
        expected = written.slice_values(k)
        slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
        stored = ds.pixel_array
        assert stored.shape == expected.shape == (ds.Rows, ds.Columns)
        values = stored.astype(np.float64) * slope + intercept
        if expected.dtype.kind in "biu":
            np.testing.assert_array_equal(values, expected)
        else:
            assert np.max(np.abs(values - expected)) <= slope / 2 * (1 + 1e-6)


def test_pixel_description_matches_pixels(written):
    for ds in written.headers:
        assert (ds.SamplesPerPixel, ds.PhotometricInterpretation) == (1, "MONOCHROME2")
        assert ds.BitsAllocated == 16 and ds.HighBit == ds.BitsStored - 1
        stored = ds.pixel_array
        bits, signed = ds.BitsStored, ds.PixelRepresentation == 1
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        assert lo <= stored.min() and stored.max() <= hi
        if written.source.array.dtype.kind in "biu":  # integers are stored as they are: signed only if negative
            assert signed == bool(written.source.array.min() < 0)
        if ds.SOPClassUID == CT:
            assert 12 <= bits <= 16  # the CT Image module's range


def test_read_image_gives_the_same_image(written):
    back = read_image(written.out)
    assert back.array.shape == written.source.array.shape
    if written.source.array.dtype.kind in "biu":
        np.testing.assert_array_equal(back.array, written.source.array)
    else:
        slope = max(float(ds.get("RescaleSlope", 1)) for ds in written.headers)
        np.testing.assert_allclose(back.array, written.source.array, rtol=1e-6, atol=slope / 2 * (1 + 1e-3))
    if written.case.geometry:
        np.testing.assert_allclose(back.affine, written.source.affine, atol=1e-4)


# ---------------------------------------------------------------------------- header
def test_identity_and_provenance(written):
    series = {ds.SeriesInstanceUID for ds in written.headers}
    assert len(series) == 1
    for k, ds in enumerate(written.headers):
        src = source_header(written, k)
        assert ds.SOPClassUID == written.case.sop_class
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.InstanceNumber == k + 1
        assert list(ds.ImageType[:2]) == ["DERIVED", "SECONDARY"]
        assert "medvae" in ds.DerivationDescription and medvae.__version__ in ds.DerivationDescription
        assert written.case.operation in ds.DerivationDescription
        if src is None:  # a new study of its own
            assert ds.StudyInstanceUID and "PatientID" in ds and "PatientName" in ds
            continue
        assert ds.SOPInstanceUID != src.SOPInstanceUID
        assert ds.SeriesInstanceUID != src.SeriesInstanceUID
        for keyword in ("StudyInstanceUID", "StudyDate", "AccessionNumber", "PatientID", "PatientName",
                        "PatientBirthDate", "PatientSex"):
            if src.get(keyword):
                assert ds.get(keyword) == src.get(keyword), keyword
        ref = ds.SourceImageSequence[0]
        assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (src.SOPClassUID, src.SOPInstanceUID)


def test_synthetic_marking(written):
    for ds in written.headers:
        says = "synthetic" in ds.DerivationDescription.lower()
        assert says == written.case.synthetic
        assert ("synthetic" in str(ds.get("ImageComments", "")).lower()) == written.case.synthetic
        if ds.SOPClassUID == SC:
            assert ds.ConversionType == ("SYN" if written.case.synthetic else "WSD")
        else:
            assert "ConversionType" not in ds


def test_geometry_per_slice(written):
    """CT and MR keep position, orientation and spacing, slice by slice, as in their source; a 2-D radiograph
    or capture gets no patient position; a Secondary Capture volume keeps distinct slice positions."""
    headers = written.headers
    if written.case.sop_class not in (CT, MR):
        if written.source.array.ndim == 2:
            assert all("ImagePositionPatient" not in ds and "ImageOrientationPatient" not in ds for ds in headers)
        else:
            positions = {tuple(float(v) for v in ds.ImagePositionPatient) for ds in headers}
            assert len(positions) == len(headers) and len({ds.FrameOfReferenceUID for ds in headers}) == 1
        return
    for k, ds in enumerate(headers):
        src = source_header(written, k)
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            np.testing.assert_allclose(np.array(ds[keyword].value, float), np.array(src[keyword].value, float),
                                       atol=1e-4, err_msg=keyword)
        assert ds.FrameOfReferenceUID == src.get("FrameOfReferenceUID", ds.FrameOfReferenceUID)
    assert len({ds.FrameOfReferenceUID for ds in headers}) == 1


# ---------------------------------------------------------------------------- validators
def validator_lines(tool: str, path: Path) -> list[str]:
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return (result.stdout + result.stderr).splitlines()


def test_dciodvfy_finds_no_errors(written):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    for f in written.files:
        errors = [line for line in validator_lines("dciodvfy", f) if line.startswith("Error")]
        assert not errors, f"{f.name}: {errors}"


@pytest.mark.parametrize("tool", ["dcmftest", "dcmdump", "dcm2pnm"])
def test_dcmtk_opens(written, tool, tmp_path):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} (dcmtk) is not installed")
    for f in written.files:
        args = [tool, str(f)] + ([str(tmp_path / "out.pgm")] if tool == "dcm2pnm" else [])
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{tool} {f.name}: {result.stdout[-500:]}{result.stderr[-500:]}"


# ---------------------------------------------------------------------------- encode_pixels
ENCODE_CASES = {
    "uint8": np.arange(256, dtype=np.uint8).reshape(16, 16),
    "uint16_12bit": np.array([[0, 4095], [17, 2048]], dtype=np.uint16),
    "negative_ints": np.array([[-1000, 0], [3000, -1]], dtype=np.int16),
    "int32_offset": np.array([[70000, 70100], [70050, 70001]], dtype=np.int32),
    "integral_floats": np.array([[0.0, 1.0], [2.0, 500.0]], dtype=np.float32),
    "floats": np.linspace(-0.37, 2.9, 60, dtype=np.float64).reshape(6, 10),
    "float32_large": np.array([[-1.5e6, 3.25], [7.0e5, 2.2e6]], dtype=np.float32),
    "constant_int": np.full((3, 4), 0, dtype=np.int64),
    "constant_float": np.full((3, 4), 3.7),
    "huge_constant": np.full((2, 2), 1e30),
    "mask": np.eye(4, dtype=bool),
}


@pytest.mark.parametrize("values", list(ENCODE_CASES.values()), ids=list(ENCODE_CASES))
def test_encode_pixels(values):
    stored, attrs = encode_pixels(values)
    assert stored.shape == values.shape and stored.dtype == (np.int16 if attrs["PixelRepresentation"] else np.uint16)
    bits = attrs["BitsStored"]
    assert 8 <= bits <= 16 and attrs["HighBit"] == bits - 1 and attrs["BitsAllocated"] == 16
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if attrs["PixelRepresentation"] else (0, 2**bits - 1)
    assert lo <= stored.min() and stored.max() <= hi
    decoded = stored.astype(np.float64) * attrs["RescaleSlope"] + attrs["RescaleIntercept"]
    if values.dtype.kind in "biu" or np.array_equal(values, np.round(values)):
        np.testing.assert_array_equal(decoded, values)
        assert attrs["RescaleSlope"] == 1
    else:
        assert np.max(np.abs(decoded - values)) <= attrs["RescaleSlope"] / 2 * (1 + 1e-6)


@pytest.mark.parametrize("values, bits, signed", [
    (np.arange(256, dtype=np.uint8), 8, 0),
    (np.array([0, 4095], dtype=np.uint16), 12, 0),
    (np.array([-128, 127], dtype=np.int16), 8, 1),
    (np.array([-129, 0], dtype=np.int16), 9, 1),
    (np.array([0, 65535], dtype=np.int32), 16, 0),
])
def test_encode_pixels_bits(values, bits, signed):
    """BitsStored is the fewest bits (at least 8) that hold the values, signed only when they are negative."""
    _, attrs = encode_pixels(values)
    assert (attrs["BitsStored"], attrs["PixelRepresentation"]) == (bits, signed)


def test_encode_pixels_min_bits():
    _, attrs = encode_pixels(np.array([0, 300], dtype=np.int16), min_bits=12)
    assert (attrs["BitsStored"], attrs["HighBit"]) == (12, 11)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_encode_pixels_refuses_non_finite(bad):
    with pytest.raises(InputError, match="non-finite"):
        encode_pixels(np.array([[0.0, bad], [1.0, 2.0]]))


# ---------------------------------------------------------------------------- series and files
@pytest.fixture(scope="module")
def ct_series() -> Image:
    return read_image(CT_SERIES)


def test_series_appears_whole(ct_series, tmp_path):
    out = write_dicom(ct_series, tmp_path / "derived.dcm")
    assert out == tmp_path / "derived"
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{k:04d}.dcm" for k in range(1, ct_series.array.shape[2] + 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derived"]  # no temporary folders left behind
    headers = [pydicom.dcmread(out / n) for n in names]
    assert len({ds.SeriesInstanceUID for ds in headers}) == 1
    assert len({ds.SOPInstanceUID for ds in headers}) == len(names)


def test_series_refuses_existing_folder(ct_series, tmp_path):
    folder = write_dicom(ct_series, tmp_path / "derived")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    old_uid = pydicom.dcmread(folder / "0001.dcm").SeriesInstanceUID
    with pytest.raises(OutputExists, match="exists; skipped"):
        write_dicom(ct_series, tmp_path / "derived")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    write_dicom(ct_series, tmp_path / "derived", overwrite=True)
    new_uids = {pydicom.dcmread(p).SeriesInstanceUID for p in folder.iterdir()}
    assert len(new_uids) == 1 and old_uid not in new_uids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derived"]  # the old series is gone, nothing left over


def test_file_refuses_existing_file_without_overwrite(tmp_path):
    path = write_dicom(png_like(), tmp_path / "a.dcm")
    before = path.read_bytes()
    with pytest.raises(OutputExists, match="exists; skipped"):
        write_dicom(png_like(), path)
    assert path.read_bytes() == before


def test_never_writes_over_the_input_series(tmp_path):
    folder = shutil.copytree(CT_SERIES, tmp_path / "ct")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(InputError, match="input"):
        write_dicom(read_image(folder), folder, overwrite=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("change", ["no_position", "no_sequence_variant"])
def test_mr_that_cannot_stay_mr_becomes_secondary_capture_of_the_same_study(tmp_path, change):
    """MR Image Storage needs the position and the sequence; without them the output is SC, still in the study."""
    source = read_image(pydicom_test_file("MR_small.dcm"))
    if change == "no_position":
        image = source.with_array(source.array, spacing_known=False)
    else:
        header = copy.deepcopy(source.dicom[0])
        del header.SequenceVariant
        image = source.with_array(source.array, dicom=[header])
    out = write_dicom(image, tmp_path / "mr.dcm")
    ds, header = pydicom.dcmread(out), source.dicom[0]
    assert ds.SOPClassUID == SC
    assert (ds.StudyInstanceUID, ds.PatientID) == (header.StudyInstanceUID, header.PatientID)
    np.testing.assert_array_equal(ds.pixel_array, source.array.T)
    if shutil.which("dciodvfy"):
        assert not [line for line in validator_lines("dciodvfy", out) if line.startswith("Error")]


@pytest.mark.parametrize("name, body_part, laterality", [
    ("chest_cr.dcm", "CHEST", None),  # unpaired: no Laterality at all
    ("extremity_cr.dcm", "EXTREMITY", "R"),  # paired: the source's side
])
def test_body_part_and_laterality(tmp_path, name, body_part, laterality):
    ds = pydicom.dcmread(write_image(read_image(SAMPLES / "dicom" / name), tmp_path / name))
    assert ds.SOPClassUID == CR and ds.BodyPartExamined == body_part
    assert ds.get("Laterality") == laterality
