"""DICOM header values, read so that no message ever shows one.

A header holds patient data (names, IDs, dates, sizes), and pydicom's own warnings and errors quote a bad value
as it is ("Invalid value for VR IS: '...'", "could not convert string to float: '...'"), which would put a
patient's data on a terminal or in a log. So medvae:

* reads only the attributes it uses (:data:`HEADER_TAGS`, what the reader, ``info`` and the DICOM writers need);
* converts them inside :func:`quiet`, where pydicom's value validation is off (no value warnings, with or
  without ``--debug``), and then checks the numbers itself (:func:`check_header`): a bad value that the pixels
  depend on is an :class:`~medvae.errors.InputError` naming the file and the attribute ("FILE: the Rows attribute
  is not a valid number"); one they do not (a window, a pixel size, an orientation) is left out with a note that
  names the attribute and the problem, never the value.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager

import numpy as np

from medvae.errors import InputError

# what the derived-DICOM writer (medvae.io.dicom) copies from a source
PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
           "PatientSize", "PatientWeight", "PatientComments")
DEIDENTIFICATION = ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence")
STUDY = ("StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
         "StudyDescription")
SERIES = ("PatientPosition",)
ACQUISITION_ATTRIBUTES = (
    "KVP", "AcquisitionNumber", "SliceThickness", "ConvolutionKernel", "XRayTubeCurrent", "ExposureTime",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime",
    "EchoTrainLength", "InversionTime", "MagneticFieldStrength", "ImagedNucleus", "SequenceName", "FlipAngle",
    "ViewPosition", "ImagerPixelSpacing")

#: numbers the pixels depend on: a bad one means the file cannot be read
REQUIRED_NUMBERS = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "SamplesPerPixel", "PlanarConfiguration", "NumberOfFrames", "RescaleSlope", "RescaleIntercept")
#: numbers the reader can do without: a bad one is left out, with a note
OPTIONAL_NUMBERS = ("WindowCenter", "WindowWidth", "SliceThickness", "SpacingBetweenSlices", "InstanceNumber",
                    "SeriesNumber")
GEOMETRY = ("PixelSpacing", "ImagerPixelSpacing", "ImageOrientationPatient", "ImagePositionPatient")

#: the attributes medvae reads from a DICOM header (the rest are never decoded)
HEADER_TAGS = tuple(dict.fromkeys((
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "Modality", "Manufacturer",
    "SeriesNumber", "InstanceNumber", "SeriesDescription", "ImageType", "DerivationDescription", "ImageComments",
    "BurnedInAnnotation", "ConversionType", "BodyPartExamined", "Laterality", "PatientOrientation",
    "FrameOfReferenceUID", "PositionReferenceIndicator", "SegmentSequence", "SpacingBetweenSlices",
    "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "PhotometricInterpretation",
    "RescaleType", "VOILUTSequence", "VOILUTFunction", "ModalityLUTSequence", "PresentationLUTShape",
    *REQUIRED_NUMBERS, *OPTIONAL_NUMBERS, *GEOMETRY, *PATIENT, *DEIDENTIFICATION, *STUDY, *SERIES,
    *ACQUISITION_ATTRIBUTES)))

_lock = threading.Lock()
_depth = 0
_saved: tuple = ()


@contextmanager
def quiet():
    """Within: pydicom neither validates nor warns about header values (both its reading and writing validation
    modes are IGNORE), so no value is quoted. Nested and concurrent uses share one switch."""
    global _depth, _saved
    from pydicom import config

    with _lock:
        if _depth == 0:
            _saved = (config.settings._reading_validation_mode, config.settings._writing_validation_mode)
            config.settings.reading_validation_mode = config.IGNORE
            config.settings.writing_validation_mode = config.IGNORE
        _depth += 1
    try:
        with warnings.catch_warnings():  # belt and braces for pydicom versions that warn regardless
            warnings.filterwarnings("ignore", message=r"(?s).*(Invalid value for VR|is not valid for elements "
                                    r"with a VR|exceeds the maximum length)", category=UserWarning)
            yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                config.settings._reading_validation_mode, config.settings._writing_validation_mode = _saved


def read_header(path, *, tags=HEADER_TAGS):
    """The header of the DICOM file ``path`` (no pixel data), only the attributes in ``tags``, checked by
    :func:`check_header`. Raises InputError (one line) for a file whose header cannot be parsed."""
    import pydicom

    try:
        with quiet():
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=list(tags))
    except Exception as e:
        raise InputError(f"{path}: not a readable DICOM file: its header cannot be parsed "
                         f"({type(e).__name__})") from e
    check_header(ds, path)
    return ds


def numbers(ds, keyword) -> list[float] | None:
    """The values of a numeric attribute as floats (None when absent or empty); ValueError when they are not numbers.

    Call inside :func:`quiet` (the element is decoded here unless it was already)."""
    try:
        if keyword not in ds:
            return None
        value = ds[keyword].value
    except Exception:
        raise ValueError(keyword) from None
    if value is None or value == "":
        return None
    values = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(
        value, (str, bytes)) else [value]
    if any(isinstance(v, (str, bytes)) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(keyword)
    return [float(v) for v in values]


def is_valid_number(ds, keyword) -> bool:
    """Whether ``keyword`` is absent, empty, or holds numbers only."""
    try:
        with quiet():
            numbers(ds, keyword)
    except ValueError:
        return False
    return True


def check_header(ds, path) -> list[str]:
    """Decode and check the numbers medvae uses in ``ds`` (and its functional groups); return notes.

    Raises:
        InputError: a number the pixels depend on (:data:`REQUIRED_NUMBERS`) is not a number.
    """
    notes: list[str] = []
    with quiet():
        _check_numbers(ds, path, notes, REQUIRED_NUMBERS, OPTIONAL_NUMBERS)
        for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            for frame in (ds.get(groups) or []):
                for keyword in ("PixelMeasuresSequence", "PlaneOrientationSequence", "PlanePositionSequence",
                                "PixelValueTransformationSequence", "FrameVOILUTSequence"):
                    for item in (frame.get(keyword) or []):
                        _check_item(item, path, notes)
    return list(dict.fromkeys(notes))


def _check_item(item, path, notes) -> None:
    _check_numbers(item, path, notes, ("RescaleSlope", "RescaleIntercept"),
                   ("WindowCenter", "WindowWidth", "SliceThickness", "SpacingBetweenSlices"))


def _check_numbers(ds, path, notes, required, optional) -> None:
    """A ``required`` number that is not one is an InputError; an ``optional`` one is dropped with a note; then the
    geometry (:func:`_check_geometry`)."""
    for keyword in (*required, *optional):
        try:
            numbers(ds, keyword)
        except ValueError:
            if keyword in required:
                raise InputError(f"{path}: the {keyword} attribute is not a valid number") from None
            del ds[keyword]
            notes.append(f"the {keyword} attribute is not a valid number; ignored")
    _check_geometry(ds, notes)


def _check_geometry(ds, notes) -> None:
    """Leave out a pixel size that is not two positive numbers, an orientation that is not two non-zero,
    non-parallel directions, and a position that is not three finite numbers (each with a note)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword in ds and not _valid(ds, keyword, 2, lambda v: bool(np.all(v > 0))):
            del ds[keyword]
            notes.append(f"the {keyword} attribute is not a valid pixel size (it must be two positive numbers); "
                         "ignored")
    if "ImageOrientationPatient" in ds and not _valid(ds, "ImageOrientationPatient", 6, _directions):
        del ds["ImageOrientationPatient"]
        notes.append("the ImageOrientationPatient attribute is not a valid orientation (it must be two non-zero, "
                     "non-parallel directions); the image's position and orientation are unknown")
        if "ImagePositionPatient" in ds:
            del ds["ImagePositionPatient"]
    if "ImagePositionPatient" in ds and not _valid(ds, "ImagePositionPatient", 3, lambda v: True):
        del ds["ImagePositionPatient"]
        notes.append("the ImagePositionPatient attribute is not a valid position (it must be three numbers); "
                     "the image's position is unknown")


def _valid(ds, keyword, count, test) -> bool:
    try:
        values = numbers(ds, keyword)
    except ValueError:
        return False
    if values is None:
        return True  # empty (type 2): as good as absent
    v = np.asarray(values, dtype=float)
    return v.size == count and bool(np.all(np.isfinite(v))) and test(v)


def _directions(v) -> bool:
    row, col = v[:3], v[3:]
    norms = np.linalg.norm(row) * np.linalg.norm(col)
    return bool(norms > 1e-4 and np.linalg.norm(np.cross(row, col)) > 1e-2 * norms)


def valid_copy(ds, keyword) -> bool:
    """Whether a writer may copy ``keyword`` from the source header ``ds``: it is there and its value is valid for
    its VR (numbers for DS and IS, dates for DA, UIDs for UI, ...: pydicom's own validation, whose message, which
    would quote the value, is dropped). Call inside :func:`quiet`."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    try:
        if keyword not in ds:
            return False
        element = ds[keyword]
        if element.VR in ("DS", "IS"):  # decoded as numbers: checked as numbers
            return is_valid_number(ds, keyword)
        if element.VR == "SQ" or element.value is None:
            return True
        values = element.value if isinstance(element.value, (list, tuple)) or element.VM > 1 else [element.value]
        for value in values:
            if isinstance(value, str):  # text as read; decoded values (dates, person names) were valid to decode
                validate_value(element.VR, value, config.RAISE)
    except Exception:
        return False
    return True
