"""The DICOM reader: pydicom, with the intensity and geometry rules a radiology tool needs.

It gives what MONAI's ``PydicomReader`` gave (through ``LoadImage``), value for value, without importing
MONAI or torch: the affine (LPS converted to RAS), the column-major axis order that matches NIfTI and the
other readers, and the same metadata keys. On top of that:

* series slices are ordered by ``ImagePositionPatient`` along the slice normal (MONAI sorts by
  ``InstanceNumber``, which scanners do not promise to keep in spatial order), and a series with
  mismatched slice sizes or repeated positions is refused;
* the Modality LUT is applied in the stored bit depth, keeping integers where slope is 1;
* MONOCHROME1 is inverted so that bright always means dense (and the window with it);
* colour (RGB, YBR, PALETTE COLOR) is converted to grayscale luma, and multi-frame files become a
  volume with frames along the last axis, each with a note saying so;
* images without patient geometry (a CR has PixelSpacing or ImagerPixelSpacing but no position) keep
  their pixel spacing instead of falling back to 1 mm.

Pixel data is decoded by pydicom's own decoders (MONAI's reader used them too: it adds no decoder of its
own). Facts the generic metadata has no place for (notes, the window, the possible value range, bits) are
collected in :attr:`MedvaeDicomReader.facts` for :func:`medvae.io.images.read_image`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from medvae.errors import InputError, first_line
from medvae.io.dicom_geometry import SPATIAL_SHAPE, affine_of, geometry_json
from medvae.io.dicom_header import check_header, quiet
from medvae.io.limits import check_size

AFFINE, ORIGINAL_AFFINE = "affine", "original_affine"  # MONAI's MetaKeys names, as before
#: (row, column) swap applied to the affine along with the array's first two axes (``swap_ij``)
SWAP_IJ = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

#: BT.601 luma weights, the usual grayscale for RGB medical images (what PIL's convert("L") uses)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class DicomFacts:
    """What reading one DICOM file or series found out beyond the array and affine."""

    notes: list[str] = field(default_factory=list)
    value_range: tuple[float, float] | None = None  # the values the stored bits can take, after rescale/inversion
    window: tuple[float, float] | None = None  # (center, width) in output values
    bits: int | None = None
    inverted: bool = False
    slice_files: list[str] = field(default_factory=list)  # files in spatial order (series)


def _item(ds, keyword):
    """The first item of a sequence attribute, or None."""
    seq = getattr(ds, keyword, None) if ds is not None else None
    return seq[0] if seq else None


def _has_pixel_data_tag(filename) -> bool:
    """Whether the file's bytes hold a Pixel Data element's tag (7FE0,0010): pydicom reads a file cut inside its
    pixel data without them, and without an error."""
    import re

    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return re.search(rb"\xe0\x7f\x10\x00|\x7f\xe0\x00\x10(OB|OW)", data[132:]) is not None


def _valid_spacing(value) -> tuple[float, float] | None:
    """A (row, column) spacing if ``value`` holds two positive finite numbers, else None."""
    try:
        pair = (float(value[0]), float(value[1]))
    except (TypeError, ValueError, IndexError):
        return None
    return pair if all(np.isfinite(v) and v > 0 for v in pair) else None


def _int_dtype(lo: float, hi: float, preferred) -> np.dtype | None:
    """The first of ``preferred``, int16, uint16, int32 that holds ``lo..hi``, or None."""
    for dtype in (np.dtype(preferred), np.dtype(np.int16), np.dtype(np.uint16), np.dtype(np.int32)):
        if dtype.kind in "iu" and np.iinfo(dtype).min <= lo and hi <= np.iinfo(dtype).max:
            return dtype
    return None


def _infer_transfer_syntax(ds) -> None:
    """Files without a meta header (pre-DICOM-3 style) are uncompressed: name their syntax from the encoding."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _group(ds, keyword):
    """The first item of ``keyword`` in an enhanced file's shared functional groups (else the first frame's)."""
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        item = _item(_item(ds, groups), keyword)
        if item is not None:
            return item
    return None


def _rescales(ds, frames: int) -> list[tuple[float, float]]:
    """(slope, intercept) pairs: one for the file, or one per frame when an enhanced file varies them."""
    def pair(item):
        return (float(getattr(item, "RescaleSlope", 1) or 1), float(getattr(item, "RescaleIntercept", 0) or 0))

    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return [pair(ds)]
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if frames and per_frame and len(per_frame) == frames and all(
            _item(f, "PixelValueTransformationSequence") is not None for f in per_frame):
        pairs = [pair(_item(f, "PixelValueTransformationSequence")) for f in per_frame]
        return pairs if len(set(pairs)) > 1 else pairs[:1]
    shared = _item(_item(ds, "SharedFunctionalGroupsSequence"), "PixelValueTransformationSequence")
    return [pair(shared)] if shared is not None else [(1.0, 0.0)]


def _first(value) -> float:
    """A DICOM multi-valued number's first value as a float."""
    try:
        return float(value[0])
    except TypeError:
        return float(value)


class MedvaeDicomReader:
    """Reads a DICOM file or one series: applies the Modality LUT, inverts MONOCHROME1, sorts slices by position.

    Used as MONAI's readers are (``reader.get_data(reader.read(files))``); returns arrays of shape
    ``(columns, rows[, slices])`` like the other readers, and metadata whose ``"affine"`` maps them to RAS.

    Args:
        kwargs: passed to ``pydicom.dcmread`` (``force=True``, for files sniffed as DICOM already).
    """

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.filenames: list = []
        self.has_series = False
        self.facts = DicomFacts()

    def read(self, data, **kwargs):
        """A file, or a list of files that form one series (unlike MONAI, which would stack a list as channels
        and, given a folder, would skip DICOM files that lack the 'DICM' preamble)."""
        import pydicom

        self.facts = DicomFacts()
        if isinstance(data, (list, tuple)) and len(data) > 1:
            names = [str(f) for f in data]
            self.filenames, self.has_series = [names], True
        else:
            names = [str(data[0] if isinstance(data, (list, tuple)) else data)]
            self.filenames, self.has_series = names, False
        datasets = []
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in names:  # the values the reader uses are decoded and checked here, never quoted
                ds = pydicom.dcmread(name, **{**self.kwargs, **kwargs})
                self._add_notes(check_header(ds, name))
                datasets.append(ds)
        return datasets if self.has_series else datasets[0]

    def _add_notes(self, notes) -> None:
        self.facts.notes.extend(n for n in notes if n not in self.facts.notes)

    def get_data(self, data):
        """``(array, meta)``: the pixels ``(columns, rows[, slices])`` and metadata with ``"affine"``,
        ``"original_affine"``, ``"spatial_shape"`` and, where the file says nothing of its size,
        ``"spacing_known"``."""
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.has_series:
                array, meta = self._combine_dicom_series(data, self.filenames[0])
            else:
                array = self._get_array_data(data, self.filenames[0])
                meta = self._get_meta_dict(data)
                meta[SPATIAL_SHAPE] = array.shape
            array = np.ascontiguousarray(np.swapaxes(array, 0, 1))
            affine = affine_of(meta) @ SWAP_IJ
            shape = list(meta[SPATIAL_SHAPE])
            shape[0], shape[1] = shape[1], shape[0]
            meta[SPATIAL_SHAPE] = tuple(shape)
            meta[ORIGINAL_AFFINE] = affine
            meta[AFFINE] = affine.copy()
        if not isinstance(data, list) and "00200032" not in meta:
            self._set_plain_spacing(data, meta)
        elif not isinstance(data, list) and "lastImagePositionPatient" not in meta and "00200037" in meta:
            self._set_slice_normal(data, meta)
        return array, meta

    # ----------------------------------------------------------------- series order
    def _combine_dicom_series(self, data, filenames):
        datasets = list(zip(data, filenames))
        orientation = getattr(datasets[0][0], "ImageOrientationPatient", None)
        if orientation is None or any("ImagePositionPatient" not in ds for ds, _ in datasets):
            self._order_by_instance_number(datasets, filenames)
        else:
            self._order_by_position(datasets, filenames, orientation)
        shapes = {(int(ds.Rows), int(ds.Columns)) for ds, _ in datasets}
        if len(shapes) > 1:
            raise InputError(f"{filenames[0]}: the series mixes slice sizes {sorted(shapes)}")
        for ds, _ in datasets:
            if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
                raise InputError(f"{filenames[0]}: a series of multi-frame files is not supported; "
                                 "convert one file at a time")
        first = datasets[0][0]  # the lowest slice: its position is the volume's origin
        arrays = [self._get_array_data(ds, name) for ds, name in datasets]
        self.facts.slice_files = [str(name) for _, name in datasets]
        meta = self._get_meta_dict(first)
        if "ImagePositionPatient" in datasets[-1][0] and "00200037" in meta:
            meta["lastImagePositionPatient"] = np.asarray(datasets[-1][0].ImagePositionPatient, float)
        stacked = np.stack(arrays, axis=-1)
        meta[SPATIAL_SHAPE] = stacked.shape
        return stacked, meta

    def _order_by_position(self, datasets, filenames, orientation):
        """Sort slices along the normal; refuse repeated positions and uneven gaps (a missing slice)."""
        row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
        normal = np.cross(row, col)
        datasets.sort(key=lambda item: float(np.dot(normal, np.asarray(item[0].ImagePositionPatient, float))))
        positions = np.array([np.dot(normal, np.asarray(ds.ImagePositionPatient, float)) for ds, _ in datasets])
        gaps = np.diff(positions)
        if np.any(gaps < 1e-4):
            raise InputError(f"{filenames[0]}: the series has {len(gaps) - np.count_nonzero(gaps >= 1e-4) + 1} "
                             "slices at the same position; pass one series (or one acquisition) per folder")
        if gaps.size and np.ptp(gaps) > 0.01 * gaps.mean() + 1e-3:
            raise InputError(f"{filenames[0]}: slice gaps vary from {gaps.min():.4g} to {gaps.max():.4g} mm "
                             "(a missing slice?); medvae reads evenly spaced series only")

    def _order_by_instance_number(self, datasets, filenames):
        """No positions (a capture series, or one medvae wrote without geometry): InstanceNumber order."""
        numbers = [getattr(ds, "InstanceNumber", None) for ds, _ in datasets]
        if None in numbers or len(set(numbers)) != len(numbers):
            raise InputError(f"{filenames[0]}: the series has neither slice positions (ImagePositionPatient) nor "
                             "distinct InstanceNumbers, so its slice order is unknown")
        datasets.sort(key=lambda item: int(item[0].InstanceNumber))
        self.facts.notes.append("no slice positions: slices ordered by InstanceNumber, slice spacing unknown")

    # ----------------------------------------------------------------- pixels
    def _get_array_data(self, img, filename):
        """Pixels as values that mean what they say: (rows, columns[, frames])."""
        from pydicom.pixels import apply_color_lut, apply_modality_lut

        if "PixelData" not in img and "FloatPixelData" not in img and "DoubleFloatPixelData" not in img:
            if _has_pixel_data_tag(filename):  # pydicom stops quietly where a file ends inside its pixel data
                raise InputError(f"{filename}: the pixel data is truncated or cannot be decoded")
            sop = getattr(getattr(img, "SOPClassUID", None), "name", None)
            raise InputError(f"{filename}: the DICOM file holds no image (no Pixel Data)"
                             + (f"; it is a {sop}" if sop else "; is it truncated?"))
        frames = int(getattr(img, "NumberOfFrames", 1) or 1)
        check_size(filename, (int(getattr(img, "Columns", 0) or 0), int(getattr(img, "Rows", 0) or 0), frames))
        _infer_transfer_syntax(img)
        try:
            data = img.pixel_array
        except Exception as e:  # decoder missing, truncated pixel data, ...
            syntax = getattr(getattr(getattr(img, "file_meta", None), "TransferSyntaxUID", None), "name", "?")
            text = str(e)
            if "missing dependencies" in text or "No pixel data decoders" in text or "not supported" in text:
                raise InputError(f"{filename}: cannot decode the pixel data ({syntax}): {first_line(e)}") from e
            raise InputError(f"{filename}: the pixel data is truncated or cannot be decoded ({syntax})") from e
        if not data.dtype.isnative:  # big-endian files: native order for numpy/torch arithmetic
            data = data.astype(data.dtype.newbyteorder("="))
        photometric = str(getattr(img, "PhotometricInterpretation", "MONOCHROME2")).upper()
        samples = int(getattr(img, "SamplesPerPixel", 1) or 1)
        bits = int(getattr(img, "BitsStored", 0) or getattr(img, "BitsAllocated", 16))
        self.facts.bits = bits
        if photometric == "PALETTE COLOR":
            data = apply_color_lut(data, img)
            samples = 3
        if samples == 3:
            rgb = data.astype(np.float32)
            data = rgb @ LUMA
            self.facts.notes.append(f"{photometric} colour converted to grayscale (BT.601 luma)")
            self.facts.value_range = (0.0, float(data.max() if photometric == "PALETTE COLOR" else 2**bits - 1))
            photometric = "MONOCHROME2"
        else:
            data = self._modality(data, img, apply_modality_lut, bits)
        if photometric == "MONOCHROME1":
            lo, hi = self.facts.value_range
            total = lo + hi
            dtype = _int_dtype(lo, hi, data.dtype) if data.dtype.kind in "iu" and total == int(total) else None
            if dtype is not None:
                data = (np.int64(total) - data.astype(np.int64)).astype(dtype)
            else:
                data = np.float32(total) - data.astype(np.float32)
            self.facts.inverted = True
            self.facts.notes.append("MONOCHROME1 inverted so that bright means dense")
        self._window(img, photometric)
        if frames > 1:
            data = np.moveaxis(data, 0, -1)  # frames last, like the slices of a series
            self.facts.notes.append(f"{frames} frames read as a volume (frames along the last axis)")
        return data

    def _modality(self, data, img, apply_modality_lut, bits):
        """Apply the Modality LUT or rescale (top level, or an enhanced file's shared/per-frame groups)."""
        signed = int(getattr(img, "PixelRepresentation", 0)) == 1
        stored = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if "ModalityLUTSequence" in img:
            out = apply_modality_lut(data, img).astype(np.float32)
            lut = apply_modality_lut(np.array(stored, dtype=data.dtype), img)
            self.facts.value_range = (float(np.min(lut)), float(np.max(lut)))
            return out
        rescales = _rescales(img, data.shape[0] if int(getattr(img, "NumberOfFrames", 1) or 1) > 1 else 0)
        ends = [v * slope + intercept for slope, intercept in rescales for v in stored]
        self.facts.value_range = (min(ends), max(ends))
        if all(slope == 1 and intercept == int(intercept) for slope, intercept in rescales):
            if len(rescales) == 1:
                out = data.astype(np.int64) + int(rescales[0][1])
            else:  # one (slope 1) intercept per frame
                out = data.astype(np.int64) + np.array([int(i) for _, i in rescales]).reshape(-1, 1, 1)
            dtype = _int_dtype(float(out.min(initial=0)), float(out.max(initial=0)), data.dtype)
            if dtype is not None:
                return out.astype(dtype)
        slopes = np.array([s for s, _ in rescales], np.float32)
        intercepts = np.array([i for _, i in rescales], np.float32)
        if len(rescales) > 1:  # one per frame; frames are the first axis at this point
            slopes, intercepts = slopes.reshape(-1, 1, 1), intercepts.reshape(-1, 1, 1)
        else:
            slopes, intercepts = slopes[0], intercepts[0]
        return data.astype(np.float32) * slopes + intercepts

    def _window(self, img, photometric):
        voi = img if "WindowCenter" in img else _group(img, "FrameVOILUTSequence")
        if voi is None or "WindowCenter" not in voi or "WindowWidth" not in voi:
            return
        center, width = _first(voi.WindowCenter), _first(voi.WindowWidth)
        if self.facts.inverted:
            lo, hi = self.facts.value_range
            center = lo + hi - center
        if width > 0:
            self.facts.window = (center, width)

    # ----------------------------------------------------------------- geometry
    def _get_meta_dict(self, img) -> dict:
        """The geometry attributes, with the plane geometry of enhanced multi-frame files and the last frame's
        position."""
        meta = geometry_json(img)
        frames = int(getattr(img, "NumberOfFrames", 1) or 1)
        shared = _item(img, "SharedFunctionalGroupsSequence")
        per_frame = getattr(img, "PerFrameFunctionalGroupsSequence", None)
        orientation = _item(shared, "PlaneOrientationSequence") or _item(_item(img, "PerFrameFunctionalGroupsSequence"),
                                                                           "PlaneOrientationSequence")
        measures = _item(shared, "PixelMeasuresSequence")
        if "00200037" not in meta and orientation is not None and "ImageOrientationPatient" in orientation:
            meta["00200037"] = {"vr": "DS", "Value": [float(v) for v in orientation.ImageOrientationPatient]}
        if "00280030" not in meta and measures is not None and "PixelSpacing" in measures:
            meta["00280030"] = {"vr": "DS", "Value": [float(v) for v in measures.PixelSpacing]}
        positions = [_item(f, "PlanePositionSequence") for f in per_frame] if per_frame else []
        if positions and all(p is not None and "ImagePositionPatient" in p for p in positions):
            meta["00200032"] = {"vr": "DS", "Value": [float(v) for v in positions[0].ImagePositionPatient]}
            if frames > 1:
                meta["lastImagePositionPatient"] = np.asarray(positions[-1].ImagePositionPatient, float)
        elif frames > 1 and "00200032" in meta and "00200037" in meta:
            step = float(getattr(img, "SpacingBetweenSlices", 0) or getattr(img, "SliceThickness", 0) or 0)
            iop = np.asarray(meta["00200037"]["Value"], float)
            normal = np.cross(iop[:3], iop[3:])
            if step > 0:
                first = np.asarray(meta["00200032"]["Value"], float)
                meta["lastImagePositionPatient"] = first + normal * step * (frames - 1)
                self.facts.notes.append(f"frame positions assumed {step:g} mm apart (SpacingBetweenSlices/SliceThickness)")
        return meta

    def _set_slice_normal(self, ds, meta):
        """One positioned slice (or frames without positions): the third affine column is the slice normal,
        not MONAI's fixed z, so sagittal and coronal slices get an invertible affine."""
        iop = np.asarray(meta["00200037"]["Value"], float)
        names = ("SliceThickness", "SpacingBetweenSlices")  # one slice: its thickness; frames: their spacing
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            names = names[::-1]
        step = next((abs(float(getattr(ds, n))) for n in names if getattr(ds, n, None)), 1.0) or 1.0
        normal_ras = np.cross(iop[:3], iop[3:]) * np.array([-1.0, -1.0, 1.0])
        for key in (AFFINE, ORIGINAL_AFFINE):
            affine = np.array(meta[key], dtype=float)
            affine[:3, 2] = normal_ras * step
            meta[key] = affine

    def _set_plain_spacing(self, ds, meta):
        """Radiographs and secondary captures: use PixelSpacing (or ImagerPixelSpacing) without a position."""
        spacing = _valid_spacing(getattr(ds, "PixelSpacing", None))
        if spacing is None and _valid_spacing(getattr(ds, "ImagerPixelSpacing", None)) is not None:
            spacing = _valid_spacing(ds.ImagerPixelSpacing)
            self.facts.notes.append("pixel spacing from ImagerPixelSpacing (measured at the detector)")
        elif spacing is None and getattr(ds, "PixelSpacing", None) is not None:
            self._add_notes(["the PixelSpacing attribute is not a valid pixel size; pixel size unknown"])
        affine = np.eye(4)
        if spacing is not None:
            row_spacing, col_spacing = float(spacing[0]), float(spacing[1])
            affine[0, 0], affine[1, 1] = col_spacing, row_spacing  # axis 0 runs along a row: column spacing
        meta[AFFINE] = affine
        meta[ORIGINAL_AFFINE] = affine.copy()
        meta["spacing"] = np.diag(affine)[: len(meta[SPATIAL_SHAPE])]
        meta["spacing_known"] = spacing is not None
