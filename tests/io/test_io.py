"""Reading and writing images: axis conventions, intensities, DICOM syntaxes, series, errors, round trips."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image as PILImage

from medvae.io.images import Image, read_image, write_image
from medvae.errors import InputError, UsageError


def asymmetric(rows=5, cols=8, dtype=np.uint8):
    """A (rows, cols) picture with one bright pixel at row 1, column 6: any transpose or flip moves it."""
    a = np.zeros((rows, cols), dtype=dtype)
    a[1, 6] = 200
    a[rows - 1, 0] = 50
    return a


# ---------------------------------------------------------------- one convention for every format
def test_png_is_read_as_columns_by_rows(tmp_path):
    picture = asymmetric()
    PILImage.fromarray(picture).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.array.shape == (8, 5)  # (x, y) = (columns, rows), like MONAI's readers and NIfTI
    assert image.array[6, 1] == 200 and image.array[0, 4] == 50
    np.testing.assert_array_equal(image.array.T, picture)


def test_dicom_is_read_in_the_same_convention_as_png(tmp_path):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    picture = asymmetric(ds.Rows, ds.Columns - 3, np.int16)
    ds.Columns = picture.shape[1]
    ds.PixelData = picture.tobytes()
    ds.save_as(tmp_path / "a.dcm")
    image = read_image(tmp_path / "a.dcm")
    np.testing.assert_array_equal(image.array.T, picture)
    # the affine maps index (x=column, y=row) the way DICOM's orientation says
    iop = np.array(ds.ImageOrientationPatient, float)
    lps = np.diag([-1, -1, 1, 1]) @ image.affine
    np.testing.assert_allclose(lps[:3, 0] / np.linalg.norm(lps[:3, 0]), iop[:3], atol=1e-6)
    np.testing.assert_allclose(lps[:3, 1] / np.linalg.norm(lps[:3, 1]), iop[3:], atol=1e-6)
    np.testing.assert_allclose(lps[:3, 3], np.array(ds.ImagePositionPatient, float), atol=1e-4)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy", ".nii.gz", ".dcm"])
def test_no_transpose_or_flip_through_any_format(tmp_path, suffix):
    picture = asymmetric(dtype=np.uint16) * 300
    PILImage.fromarray(picture).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    out = write_image(image, tmp_path / f"b{suffix}")
    again = read_image(out)
    np.testing.assert_array_equal(again.array, image.array)
    if suffix == ".npy":  # .npy holds numpy's image order: rows first, so imshow shows it upright
        np.testing.assert_array_equal(np.load(out), picture)


# ---------------------------------------------------------------- intensities
def test_monochrome1_is_inverted_so_bright_means_dense(sample_dir):
    path = sample_dir / "dicom" / "chest_cr.dcm"
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    image = read_image(path)
    np.testing.assert_array_equal(image.array, (2**ds.BitsStored - 1) - ds.pixel_array.T.astype(np.int32))
    assert image.window == (2**15 - 1 - 15000, 30000)  # the window moves with the inversion
    assert any("MONOCHROME1" in n for n in image.notes)
    assert image.spacing_known is False and any("PixelSpacing" in n for n in image.notes)  # the file says 0\0


def test_rescale_slope_and_intercept_are_applied(dicom_data):
    ds = pydicom.dcmread(dicom_data / "693_UNCR.dcm")
    image = read_image(dicom_data / "693_UNCR.dcm")
    expected = ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(image.array, expected)
    assert image.array.dtype.kind == "i"  # slope 1: integers stay integers
    assert image.array.min() < -1000  # Hounsfield units, air about -1000


def test_fractional_slope_gives_floats(dicom_data):
    ds = pydicom.dcmread(dicom_data / "MR2_UNCR.dcm")
    image = read_image(dicom_data / "MR2_UNCR.dcm")
    assert image.array.dtype == np.float32
    np.testing.assert_allclose(image.array, ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept),
                               rtol=1e-5)


@pytest.mark.parametrize("compressed, reference", [
    ("RG1_J2KR.dcm", "RG1_UNCR.dcm"),                # JPEG 2000 lossless, MONOCHROME1 CR
    ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),                # JPEG 2000 lossless MR
    ("693_J2KR.dcm", "693_UNCR.dcm"),                # JPEG 2000 lossless, signed CT
    ("emri_small_RLE.dcm", "emri_small.dcm"),        # RLE lossless, multi-frame
    ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),   # JPEG-LS lossless
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
    ("emri_small_big_endian.dcm", "emri_small.dcm"),  # explicit VR big endian
])
def test_lossless_transfer_syntaxes_decode_to_the_uncompressed_pixels(dicom_data, compressed, reference):
    a, b = read_image(dicom_data / compressed), read_image(dicom_data / reference)
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine)


@pytest.mark.parametrize("name", ["RG1_J2KI.dcm", "MR2_J2KI.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "JPEG-LL.dcm"])
def test_other_compressed_files_decode(dicom_data, name):
    image = read_image(dicom_data / name)
    assert image.array.ndim == 2 and np.ptp(image.array) > 0
    ds = pydicom.dcmread(dicom_data / name)
    if "RescaleSlope" not in ds and ds.PhotometricInterpretation == "MONOCHROME2":
        np.testing.assert_array_equal(image.array, ds.pixel_array.T)


def test_jpeg_baseline_and_lossy_syntaxes_decode():
    for name in ("SC_rgb_jpeg_dcmtk.dcm", "JPGExtended.dcm", "JPEGLSNearLossless_16.dcm"):
        image = read_image(pydicom.data.get_testdata_file(name))
        assert np.ptp(image.array) > 0, name
    gray = read_image(pydicom.data.get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    reference = read_image(pydicom.data.get_testdata_file("SC_rgb.dcm"))
    assert np.abs(gray.array.astype(float) - reference.array).mean() < 3  # lossy JPEG of the same picture


def test_colour_is_converted_to_gray_with_a_note(dicom_data):
    rgb = pydicom.dcmread(dicom_data / "US1_UNCR.dcm").pixel_array.astype(np.float32)
    image = read_image(dicom_data / "US1_UNCR.dcm")
    np.testing.assert_allclose(image.array.T, rgb @ np.array([0.299, 0.587, 0.114], np.float32), atol=1e-3)
    assert any("grayscale" in n for n in image.notes)
    palette = read_image(dicom_data / "OBXXXX1A.dcm")
    assert palette.array.shape == (800, 600) and any("PALETTE" in n for n in palette.notes)


def test_multi_frame_becomes_a_volume_with_a_note(dicom_data):
    frames = pydicom.dcmread(dicom_data / "emri_small.dcm").pixel_array  # (10, 64, 64)
    image = read_image(dicom_data / "emri_small.dcm")
    assert image.array.shape == (64, 64, 10)
    np.testing.assert_array_equal(image.array[:, :, 3], frames[3].T)
    assert any("10 frames" in n for n in image.notes)


def test_png_bit_depths_are_kept(tmp_path, sample_dir):
    eight, sixteen = read_image(sample_dir / "png" / "chest_8bit.png"), read_image(sample_dir / "png" / "extremity_16bit.png")
    assert (eight.array.dtype, eight.bits) == (np.uint8, 8)
    assert (sixteen.array.dtype, sixteen.bits) == (np.uint16, 16) and sixteen.array.max() == 1023
    write_image(sixteen, tmp_path / "x.png")
    assert PILImage.open(tmp_path / "x.png").mode.startswith("I")  # written back as 16-bit
    small = sixteen.with_array((sixteen.array // 8).astype(np.uint16))  # max 127, but a 16-bit source
    write_image(small, tmp_path / "y.png")
    assert PILImage.open(tmp_path / "y.png").mode.startswith("I")


def test_rgb_png_is_converted_with_a_note(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 255
    PILImage.fromarray(rgb).save(tmp_path / "red.png")
    image = read_image(tmp_path / "red.png")
    assert image.array.shape == (6, 4) and image.array.max() == 76  # 0.299 * 255
    assert image.notes == ["RGB converted to grayscale (BT.601 luma)"]


# ---------------------------------------------------------------- series
def test_series_is_ordered_by_position_not_by_file_name(tmp_path, sample_dir):
    series = read_image(sample_dir / "dicom" / "ct_series")
    assert series.array.shape == (16, 16, 5)
    z = [float(h.ImagePositionPatient[2]) for h in series.dicom]
    assert z == sorted(z)
    np.testing.assert_allclose(series.affine[:3, 2], [0, 0, 2.5])
    np.testing.assert_allclose(series.affine[2, 3], z[0])
    # renaming the files (so that name order is reversed) changes nothing
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for i, f in enumerate(sorted((sample_dir / "dicom" / "ct_series").iterdir())):
        shutil.copy(f, shuffled / f"img{9 - i}.dcm")
    again = read_image(shuffled)
    np.testing.assert_array_equal(again.array, series.array)
    np.testing.assert_allclose(again.affine, series.affine)


def test_series_slices_match_their_files(sample_dir):
    folder = sample_dir / "dicom" / "ct_series"
    series = read_image(folder)
    by_z = {float(pydicom.dcmread(f).ImagePositionPatient[2]): f for f in folder.iterdir()}
    for k, header in enumerate(series.dicom):
        ds = pydicom.dcmread(by_z[float(header.ImagePositionPatient[2])])
        np.testing.assert_array_equal(series.array[:, :, k], ds.pixel_array.T + int(ds.RescaleIntercept))


def _copy_series(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
    return dst


def _series_plus(src, dst, name, **changes):
    """A copy of the series ``src`` in ``dst`` with one more file ``name``: its first slice with ``changes``."""
    folder = _copy_series(src, dst)
    ds = pydicom.dcmread(next(src.iterdir()))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(folder / name)
    return folder


def test_series_errors(tmp_path, sample_dir):
    src = sample_dir / "dicom" / "ct_series"
    two = _series_plus(src, tmp_path / "two", "extra.dcm", SeriesInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(InputError, match="2 DICOM series"):
        read_image(two)
    dup = _series_plus(src, tmp_path / "dup", "dup.dcm", SOPInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(InputError, match="same position"):
        read_image(dup)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    with pytest.raises(InputError, match="no DICOM files"):
        read_image(empty)


# ---------------------------------------------------------------- NIfTI geometry
def oblique_affine():
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.9, 1.1, 2.5])
    affine[:3, 3] = [-90.5, 20.25, -33.0]
    return affine


def test_nifti_affine_and_header_are_kept_exactly(tmp_path):
    data = np.arange(7 * 9 * 5, dtype=np.int16).reshape(7, 9, 5)
    img = nib.Nifti1Image(data, oblique_affine())
    img.header["descrip"] = b"source description"
    img.set_qform(oblique_affine(), code=1)
    nib.save(img, tmp_path / "in.nii.gz")
    image = read_image(tmp_path / "in.nii.gz")
    write_image(image, tmp_path / "out.nii.gz")
    a, b = nib.load(tmp_path / "in.nii.gz"), nib.load(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(a.affine, b.affine)
    np.testing.assert_array_equal(a.header.get_qform(), b.header.get_qform())
    assert a.header["qform_code"] == b.header["qform_code"] and a.header["sform_code"] == b.header["sform_code"]
    np.testing.assert_array_equal(np.asanyarray(b.dataobj), data)


def test_nifti_opens_in_simpleitk_with_the_same_geometry(tmp_path, sample_dir):
    sitk = pytest.importorskip("SimpleITK")
    for source in (sample_dir / "dicom" / "ct_series", sample_dir / "nifti" / "mni152_t1_4mm.nii.gz"):
        image = read_image(source)
        out = write_image(image, tmp_path / f"{source.name.split('.')[0]}.nii.gz")
        s = sitk.ReadImage(str(out))
        n = nib.load(out)
        assert s.GetSize() == n.shape
        np.testing.assert_allclose(s.GetSpacing(), n.header.get_zooms(), rtol=1e-5)
        # SimpleITK works in LPS: its origin is nibabel's RAS origin with x and y negated
        np.testing.assert_allclose(s.GetOrigin(), n.affine[:3, 3] * [-1, -1, 1], atol=1e-4)
        np.testing.assert_allclose(np.array(s.GetDirection()).reshape(3, 3),
                                   np.diag([-1, -1, 1]) @ n.affine[:3, :3] / n.header.get_zooms(), atol=1e-5)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(s).T, image.array)  # SimpleITK arrays are (z, y, x)
        np.testing.assert_allclose(n.affine, image.affine, atol=1e-5)


def test_dicom_series_to_nifti_keeps_world_coordinates(tmp_path, sample_dir):
    series = read_image(sample_dir / "dicom" / "ct_series")
    write_image(series, tmp_path / "ct.nii.gz")
    nifti = read_image(tmp_path / "ct.nii.gz")
    np.testing.assert_allclose(nifti.affine, series.affine, atol=1e-5)
    # voxel (i, j, k) centre in LPS from DICOM: IPP_k + i * col_step + j * row_step
    first = series.dicom[0]
    lps = np.diag([-1, -1, 1, 1]) @ nifti.affine @ np.array([3, 2, 0, 1])
    iop = np.array(first.ImageOrientationPatient, float)
    dr, dc = (float(v) for v in first.PixelSpacing)
    expected = np.array(first.ImagePositionPatient, float) + 3 * dc * iop[:3] + 2 * dr * iop[3:]
    np.testing.assert_allclose(lps[:3], expected, atol=1e-4)


# ---------------------------------------------------------------- errors are one line naming the file
def _one_line(error, path):
    text = str(error.value)
    assert "\n" not in text and str(path) in text
    return text


def test_missing_empty_and_non_image_files(tmp_path):
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "nope.dcm")
    assert "no such file" in _one_line(e, tmp_path / "nope.dcm")
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "empty.dcm")
    assert "empty" in _one_line(e, tmp_path / "empty.dcm")
    (tmp_path / "notes.png").write_text("just text")
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "notes.png")
    assert "not an image" in _one_line(e, tmp_path / "notes.png")


def test_wrongly_named_file(tmp_path):
    PILImage.fromarray(asymmetric()).save(tmp_path / "x.png")
    shutil.copy(tmp_path / "x.png", tmp_path / "scan.dcm")
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "scan.dcm")
    assert "holds PNG data" in _one_line(e, tmp_path / "scan.dcm")


@pytest.mark.parametrize("keep", [400, 3000])
def test_truncated_dicom(tmp_path, dicom_data, keep):
    data = (dicom_data / "MR2_UNCR.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:keep])
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "cut.dcm")
    _one_line(e, tmp_path / "cut.dcm")


def test_truncated_png_and_nifti(tmp_path, sample_dir):
    for name in ("png/chest_8bit.png", "nifti/mni152_t1_4mm.nii.gz"):
        data = (sample_dir / name).read_bytes()
        cut = tmp_path / name.split("/")[1]
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError) as e:
            read_image(cut)
        _one_line(e, cut)


def test_unsupported_kinds_are_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), tmp_path / "fmri.nii.gz")
    with pytest.raises(InputError, match="4-D NIfTI"):
        read_image(tmp_path / "fmri.nii.gz")
    pages = [PILImage.fromarray(asymmetric()) for _ in range(3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(InputError, match="3-page"):
        read_image(tmp_path / "stack.tif")
    with pytest.raises(UsageError, match="volume"):
        write_image(Image(array=np.zeros((3, 4, 5), np.uint8)), tmp_path / "vol.png")
    with pytest.raises(UsageError, match="do not fit"):
        write_image(Image(array=np.full((3, 4), -5, np.int16)), tmp_path / "neg.png")


def test_never_overwrites_the_input(tmp_path):
    PILImage.fromarray(asymmetric()).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    with pytest.raises(UsageError, match="never overwrites"):
        write_image(image, tmp_path / "a.png")


# ---------------------------------------------------------------- property tests: write then read gives the array
shapes_2d = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12)
shapes_any = hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=st.one_of(hnp.arrays(np.uint8, shapes_2d), hnp.arrays(np.uint16, shapes_2d)),
       suffix=st.sampled_from([".png", ".tif"]))
def test_display_formats_round_trip(tmp_path, array, suffix):
    image = Image(array=array, bits=8 * array.dtype.itemsize)
    path = write_image(image, tmp_path / f"x{suffix}")
    np.testing.assert_array_equal(read_image(path).array, array)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=hnp.arrays(st.sampled_from([np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64]),
                        shapes_any, elements={"allow_nan": False, "allow_infinity": False}),
       suffix=st.sampled_from([".npy", ".nii.gz", ".nii"]))
def test_volume_formats_round_trip_values_and_dtype(tmp_path, array, suffix):
    path = write_image(Image(array=array, affine=oblique_affine(), spacing_known=True), tmp_path / f"x{suffix}")
    back = read_image(path)
    assert back.array.dtype == array.dtype
    np.testing.assert_array_equal(back.array, array)
    if suffix != ".npy":
        np.testing.assert_allclose(back.affine, oblique_affine(), atol=1e-5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=st.one_of(hnp.arrays(np.uint16, shapes_2d), hnp.arrays(np.int16, shapes_2d),
                       hnp.arrays(np.float32, shapes_2d, elements=st.floats(-1e4, 1e4, width=32))))
def test_dicom_round_trip(tmp_path, array):
    path = write_image(Image(array=array), tmp_path / "x.dcm", overwrite=True)
    back = read_image(path).array
    if array.dtype.kind == "f":  # stored through RescaleSlope: within half a step
        step = max(float(np.ptp(array)) / 65535, 1e-12)
        assert np.abs(back.astype(np.float64) - array).max() <= step / 2 * 1.001 + 1e-6 * np.abs(array).max()
    else:
        np.testing.assert_array_equal(back, array)


def test_dicom_without_a_meta_header_is_read(dicom_data):
    """OT-PAL-8-face.dcm has no preamble, no 'DICM' and no transfer syntax: old, but real."""
    image = read_image(dicom_data / "OT-PAL-8-face.dcm")
    assert image.array.shape == (640, 480) and any("PALETTE" in n for n in image.notes)


def test_a_segmentation_object_is_refused_clearly(dicom_data):
    with pytest.raises(InputError, match="DICOM SEG"):
        read_image(dicom_data / "liver.dcm")


# ---------------------------------------------------------------- cases found in review
def test_a_sagittal_single_slice_gets_an_invertible_affine(tmp_path, dicom_data):
    sitk = pytest.importorskip("SimpleITK")
    image = read_image(dicom_data / "MR2_UNCR.dcm")  # sagittal: ImageOrientationPatient 0\1\0\0\0\-1
    assert abs(np.linalg.det(image.affine[:3, :3])) > 1e-3
    iop = np.array(pydicom.dcmread(dicom_data / "MR2_UNCR.dcm", stop_before_pixels=True).ImageOrientationPatient,
                   float)
    normal_lps = np.cross(iop[:3], iop[3:])
    lps = np.diag([-1, -1, 1]) @ image.affine[:3, 2]
    np.testing.assert_allclose(lps / np.linalg.norm(lps), normal_lps, atol=1e-6)
    out = write_image(image, tmp_path / "mr2.nii.gz")
    assert nib.load(out).shape == (1024, 1024, 1)  # a slice off the axial plane needs its third axis in NIfTI
    s = sitk.ReadImage(str(out))
    direction = np.array(s.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(direction[:, 0], iop[:3], atol=1e-5)  # SimpleITK: LPS, columns = index axes
    np.testing.assert_allclose(direction[:, 1], iop[3:], atol=1e-5)


def test_enhanced_ct_rescale_from_functional_groups(dicom_data):
    ds = pydicom.dcmread(dicom_data / "eCT_Supplemental.dcm")
    shared = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    image = read_image(dicom_data / "eCT_Supplemental.dcm")
    expected = np.moveaxis(ds.pixel_array, 0, -1).transpose(1, 0, 2) * float(shared.RescaleSlope) \
        + float(shared.RescaleIntercept)
    np.testing.assert_array_equal(image.array, expected)
    assert image.array.min() == -1024  # Hounsfield units


@pytest.mark.parametrize("values", [[[-1000, 0], [5, 300]], [[70000, 0], [5, 300]]])
def test_signed_and_32_bit_tiffs_keep_their_values(tmp_path, values):
    array = np.array(values, dtype=np.int32)
    PILImage.fromarray(array).save(tmp_path / "a.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif").array.T, array)


def test_nifti_shear_and_stale_pixdim_are_kept(tmp_path):
    sheared = np.array([[2.0, 0.3, 0, -10], [0, 1.5, 0, 5], [0, 0, 3.0, 7], [0, 0, 0, 1]])
    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), None)
    img.header.set_qform(np.diag([2.0, 1.5, 3.0, 1.0]), code=1)
    img.header.set_sform(sheared, code=2)
    nib.save(img, tmp_path / "shear.nii.gz")
    image = read_image(tmp_path / "shear.nii.gz")
    np.testing.assert_array_equal(image.affine, nib.load(tmp_path / "shear.nii.gz").affine)
    write_image(image, tmp_path / "again.nii.gz")
    again = nib.load(tmp_path / "again.nii.gz")
    np.testing.assert_array_equal(again.header.get_sform(), nib.load(tmp_path / "shear.nii.gz").header.get_sform())
    np.testing.assert_allclose(again.header.get_sform(), sheared, atol=1e-6)
    assert (int(again.header["qform_code"]), int(again.header["sform_code"])) == (1, 2)


def test_nifti_takes_numpy_default_integers_and_half_floats(tmp_path):
    labels = np.arange(24).reshape(2, 3, 4)  # int64
    back = read_image(write_image(Image(array=labels), tmp_path / "labels.nii.gz")).array
    np.testing.assert_array_equal(back, labels)
    assert back.dtype == np.uint8
    half = read_image(write_image(Image(array=np.ones((2, 3, 4), np.float16)), tmp_path / "h.nii.gz")).array
    assert half.dtype == np.float32 and half.sum() == 24


def test_a_volume_written_without_geometry_reads_back(tmp_path):
    volume = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3)
    folder = write_image(Image(array=volume), tmp_path / "vol.dcm")
    back = read_image(folder)
    np.testing.assert_array_equal(back.array, volume)
    assert any("InstanceNumber" in n for n in back.notes)


def test_a_series_with_a_missing_slice_is_refused(tmp_path, sample_dir):
    src = sample_dir / "dicom" / "ct_series"
    gap = _copy_series(src, tmp_path / "gap")
    middle = sorted(gap.iterdir(), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))[2]
    middle.unlink()
    with pytest.raises(InputError, match="gaps vary"):
        read_image(gap)


def test_a_series_slice_without_the_dicm_preamble_is_not_dropped(tmp_path, sample_dir):
    folder = _copy_series(sample_dir / "dicom" / "ct_series", tmp_path / "s")
    victim = sorted(folder.iterdir())[0]
    ds = pydicom.dcmread(victim)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    ds.save_as(victim, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert victim.read_bytes()[128:132] != b"DICM"
    assert read_image(folder).array.shape == (16, 16, 5)


def test_big_endian_dicom_without_meta_is_recognised_as_dicom():
    with pytest.raises(InputError, match="no Pixel Data.*RT Ion Plan"):  # DICOM, though not an image
        read_image(pydicom.data.get_testdata_file("ExplVR_BigEndNoMeta.dcm"))
