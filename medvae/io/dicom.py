"""Write derived DICOM: images medvae computed from a source image, or made from nothing.

With a source whose IOD fits (CT, MR, CR), the output keeps that IOD so PACS and viewers treat it like
its source (an MR derived from an MR stays MR Image Storage and keeps its 3-D geometry). Other sources,
CT/MR images whose position is unknown, and images with no DICOM source at all become Secondary Capture;
a Secondary Capture volume with known geometry still carries ImagePositionPatient/ImageOrientationPatient
(beyond the SC IOD, as many tools do) so the series reads back as the same volume. Always:

* the Patient and General Study modules are copied from the source (the output files with its study);
* new SeriesInstanceUID and SOPInstanceUIDs; ImageType ``DERIVED\\SECONDARY``; a DerivationDescription
  naming the medvae operation and version; a Source Image Sequence pointing at the source instance;
* MONOCHROME2, and BitsStored/PixelRepresentation chosen from the written pixels: integers are written
  as they are when they fit 16 bits (shifted by a RescaleIntercept when only their range does), other
  values through RescaleSlope/RescaleIntercept;
* Laterality present exactly when dciodvfy expects it: absent for an unpaired BodyPartExamined,
  otherwise the source's value (or empty when unknown);
* generated or synthesised images say ``synthetic`` in DerivationDescription and ImageComments
  (and ConversionType ``SYN`` for Secondary Capture).

pydicom writes the files; highdicom would not keep the source's IOD for CT/MR/CR, which is the point.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

import medvae
from medvae.errors import InputError, OutputExists
# the patient, study and series attributes copied from a source header, and how
from medvae.io.dicom_header import DEIDENTIFICATION, PATIENT, SERIES, STUDY, quiet, valid_copy

CR, CT, MR, SC = ("1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4",
                  "1.2.840.10008.5.1.4.1.1.7")
KEPT_IODS = {CR, CT, MR}

# BodyPartExamined values of unpaired structures, where General Series Laterality must be absent (the rest,
# and unknown values, need it); checked against dciodvfy
UNPAIRED = frozenset('''ABDOMEN ABDOMENPELVIS AORTA BLADDER BRAIN CEREBELLUM CERVIX CHEST CHESTABDOMEN CHESTABDPELVIS
    CIRCLEOFWILLIS COCCYX COLON CORONARYARTERY CSPINE CTSPINE DUODENUM ESOPHAGUS GALLBLADDER HEAD HEADNECK HEART
    ILEUM ILIUM JAW JEJUNUM LARYNX LIVER LSPINE LSSPINE MAXILLA MEDIASTINUM MOUTH NECK NECKCHEST NECKCHESTABDOMEN
    NECKCHESTABDPELV NOSE PANCREAS PELVIS PENIS PHARYNX PROSTATE RECTUM SCALP SKULL SPINE SPLEEN SSPINE STERNUM
    STOMACH THYMUS THYROID TLSPINE TONGUE TRACHEA TSPINE URETER URETHRA UTERUS VAGINA VULVA WHOLEBODY'''.split())
# attributes of the kept IODs' own modules that describe the acquisition, copied when present
ACQUISITION = {
    CT: ("KVP", "AcquisitionNumber", "SliceThickness", "ConvolutionKernel", "XRayTubeCurrent", "ExposureTime"),
    MR: ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime",
         "EchoTrainLength", "InversionTime", "SliceThickness", "MagneticFieldStrength", "ImagedNucleus",
         "SequenceName", "FlipAngle", "AcquisitionNumber"),
    CR: ("ViewPosition", "KVP", "ExposureTime", "XRayTubeCurrent", "ImagerPixelSpacing"),
}
TYPE2 = {CT: ("KVP", "AcquisitionNumber", "SliceThickness"),
         MR: ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength", "SliceThickness"),
         CR: ("ViewPosition",)}


def encode_pixels(values: np.ndarray, min_bits: int = 8) -> tuple[np.ndarray, dict]:
    """Choose stored pixels and the attributes that describe them.

    Integers that fit 16 bits are stored unchanged (unsigned, or signed if negative); integers whose range
    fits 16 bits are stored exactly less a RescaleIntercept; anything else is scaled into 16-bit unsigned
    with RescaleSlope/RescaleIntercept (error at most half a slope). BitsStored is at least ``min_bits``
    (the CT Image module asks for 12 to 16).

    Returns:
        (stored pixels, attributes: BitsAllocated, BitsStored, HighBit, PixelRepresentation,
        RescaleSlope, RescaleIntercept).

    Raises:
        InputError: NaN or infinite values.
    """
    values = np.asarray(values)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise InputError("the image has non-finite values (NaN or inf); DICOM cannot store them")
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    integral = values.dtype.kind in "biu" or bool(np.array_equal(values, np.round(values)))
    slope, intercept = 1.0, 0.0
    if integral and lo >= 0 and hi <= 65535:
        stored, signed = values.astype(np.uint16), False
        bits = int(hi).bit_length()
    elif integral and lo >= -32768 and hi <= 32767:
        stored, signed = values.astype(np.int16), True
        bits = int(max(-lo - 1, hi)).bit_length() + 1
    elif integral and hi - lo <= 65535 and max(-lo, hi) < 1e15:  # the intercept stays exact as a DS
        intercept = lo
        stored, signed = (values.astype(np.int64) - int(lo)).astype(np.uint16), False
        bits = int(hi - lo).bit_length()
    else:
        slope = (hi - lo) / 65535 if hi > lo else 1.0
        intercept = lo
        stored = np.round((values.astype(np.float64) - lo) / slope).astype(np.uint16)
        signed, bits = False, 16
    bits = min(max(bits, min_bits, 8), 16)
    attrs = dict(BitsAllocated=16, BitsStored=bits, HighBit=bits - 1, PixelRepresentation=int(signed),
                 RescaleSlope=slope, RescaleIntercept=intercept)
    return stored, attrs


def _ds_number(value: float) -> str:
    """A DS string (at most 16 characters) for ``value``; integers stay exact."""
    if float(value).is_integer() and len(str(int(value))) <= 16:
        return str(int(value))
    for digits in range(12, 4, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.4e}"


def _geometry(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[list[float], list[float], list[list[float]]]:
    """(PixelSpacing, ImageOrientationPatient, ImagePositionPatient per slice) from a RAS affine."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    along_row, down_col = lps[:3, 0], lps[:3, 1]  # array axis 0 steps along a row, axis 1 down the rows
    dx, dy = float(np.linalg.norm(along_row)), float(np.linalg.norm(down_col))
    orientation = [*(along_row / dx), *(down_col / dy)]
    n = shape[2] if len(shape) > 2 else 1
    positions = [list(lps[:3, 3] + k * lps[:3, 2]) for k in range(n)]
    return [dy, dx], orientation, positions


def _output_iod(source, geometry) -> str:
    """The SOP class to write: the source's CT, MR or CR where what that IOD requires is at hand, else SC."""
    sop_class = str(source.get("SOPClassUID", "")) if source is not None else ""
    if sop_class in (CT, MR) and geometry is None:
        return SC  # the patient geometry these IODs require is unknown
    if sop_class == MR and not ("ScanningSequence" in source and "SequenceVariant" in source):
        return SC  # type 1 in the MR Image module, and not for medvae to make up
    return sop_class if sop_class in KEPT_IODS else SC


@quiet()
def derived_dataset(pixels_rc: np.ndarray, source, *, operation: str, synthetic: bool, series_uid: str,
                    instance: int, geometry: tuple | None, spacing: tuple[float, float] | None,
                    notes: list[str] = (), series_description: str | None = None,
                    frame_of_reference: str | None = None, window: tuple[float, float] | None = None):
    """One derived DICOM instance holding ``pixels_rc`` (rows, columns) for ``source`` (a header or None).

    ``geometry`` is (PixelSpacing, ImageOrientationPatient, ImagePositionPatient) or None; a CT or MR
    source without it (or an MR source without ScanningSequence/SequenceVariant) gives a Secondary
    Capture, still filed with the source's patient and study.
    ``frame_of_reference`` is the FrameOfReferenceUID for a Secondary Capture with geometry (one per series).
    The source's values are read inside :func:`~medvae.io.dicom_header.quiet` (pydicom quotes none of them),
    and an attribute that is a number by its VR but holds something else (a PatientSize of "tall") is left out.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    sop_class = _output_iod(source, geometry)
    stored, attrs = encode_pixels(pixels_rc, min_bits=12 if sop_class == CT else 8)
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = getattr(source, "SpecificCharacterSet", "ISO_IR 192") if source else "ISO_IR 192"
    for keyword in PATIENT + STUDY:
        if source is not None and valid_copy(source, keyword):
            setattr(ds, keyword, source[keyword].value)
    if source is not None and source.get("PatientIdentityRemoved") == "YES" and (
            "DeidentificationMethod" in source or "DeidentificationMethodCodeSequence" in source):
        for keyword in DEIDENTIFICATION:  # only together: the method is required once identity is removed
            if valid_copy(source, keyword):
                setattr(ds, keyword, source[keyword].value)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "ReferringPhysicianName", "StudyID", "AccessionNumber"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    if "StudyInstanceUID" not in ds:
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.Modality = str(getattr(source, "Modality", "OT")) if sop_class != SC else "OT"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, 900 + int(
        getattr(source, "SeriesNumber", 0) or 0) % 100, instance
    ds.SeriesDescription = (series_description or f"medvae {operation}")[:64]
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Manufacturer = "medvae"
    ds.SoftwareVersions = medvae.__version__
    for keyword in SERIES:
        if source is not None and valid_copy(source, keyword) and sop_class != SC:
            setattr(ds, keyword, source[keyword].value)
    body_part = str(source.get("BodyPartExamined") or "").strip().upper() if source is not None else ""
    if body_part:
        ds.BodyPartExamined = body_part
    if body_part not in UNPAIRED:  # paired or unknown: the side, or empty when the source does not say
        ds.Laterality = (source.get("Laterality") or None) if source is not None else None
    if sop_class != SC:
        for keyword in ACQUISITION[sop_class]:
            if valid_copy(source, keyword):
                setattr(ds, keyword, source[keyword].value)
        for keyword in TYPE2[sop_class]:
            if keyword not in ds:
                setattr(ds, keyword, None)
        if sop_class == CR and "BodyPartExamined" not in ds:
            ds.BodyPartExamined = None
    else:
        ds.ConversionType = "SYN" if synthetic else "WSD"
    if sop_class not in (CT, MR):  # General Image: orientation letters where there is no patient geometry
        ds.PatientOrientation = source.PatientOrientation if source is not None and "PatientOrientation" in source else ""
    # image type and provenance
    extra = list(getattr(source, "ImageType", []))[2:] if sop_class in (CT, MR) else []
    ds.ImageType = ["DERIVED", "SECONDARY", *extra]
    what = f"medvae {medvae.__version__} {operation}" + ("; synthetic image" if synthetic else "")
    ds.DerivationDescription = what[:1024]
    comments = (["SYNTHETIC image generated by medvae, not acquired"] if synthetic else []) + list(notes)
    if comments:
        ds.ImageComments = "; ".join(comments)[:10240]
    ds.BurnedInAnnotation = "NO"
    if source is not None and "SOPInstanceUID" in source:
        ref = Dataset()
        ref.ReferencedSOPClassUID = source.SOPClassUID
        ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
        ds.SourceImageSequence = [ref]
    # geometry
    if geometry is not None and (sop_class in (CT, MR) or (sop_class == SC and frame_of_reference)):
        ds.FrameOfReferenceUID = (getattr(source, "FrameOfReferenceUID", None) if sop_class != SC else None
                                  ) or frame_of_reference or generate_uid()
        if sop_class != SC:
            ds.PositionReferenceIndicator = getattr(source, "PositionReferenceIndicator", "")
        pixel_spacing, orientation, position = geometry
        ds.PixelSpacing = [_ds_number(v) for v in pixel_spacing]
        ds.ImageOrientationPatient = [_ds_number(v) for v in orientation]
        ds.ImagePositionPatient = [_ds_number(v) for v in position]
    elif spacing is not None:
        ds.PixelSpacing = [_ds_number(v) for v in spacing]
    # pixels
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = (int(v) for v in stored.shape)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = attrs["BitsAllocated"], attrs["BitsStored"], attrs["HighBit"]
    ds.PixelRepresentation = attrs["PixelRepresentation"]
    if sop_class in (CT, SC, CR) or attrs["RescaleSlope"] != 1 or attrs["RescaleIntercept"] != 0:
        ds.RescaleIntercept = _ds_number(attrs["RescaleIntercept"])
        ds.RescaleSlope = _ds_number(attrs["RescaleSlope"])
        if sop_class in (SC, CR):
            ds.RescaleType = "HU" if ds.Modality == "CT" else "US"
    if window is not None and window[1] > 0:  # VOI LUT module: the display window, in the written values' units
        ds.WindowCenter, ds.WindowWidth = _ds_number(window[0]), _ds_number(window[1])
    ds.LossyImageCompression = "00"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return ds


def is_medvae_series(folder: Path) -> bool:
    """Whether ``folder`` is a series folder that :func:`write_dicom` wrote (``0001.dcm``, ... by medvae)."""
    import re

    import pydicom

    if not folder.is_dir():
        return False
    entries = sorted(folder.iterdir())
    if not entries or not all(p.is_file() and re.fullmatch(r"\d{4}\.dcm", p.name) for p in entries):
        return False
    try:
        return str(pydicom.dcmread(entries[0], stop_before_pixels=True).get("Manufacturer", "")) == "medvae"
    except Exception:
        return False


def write_dicom(image, path: str | Path, *, operation: str = "convert", synthetic: bool = False,
                series_description: str | None = None, overwrite: bool = False, deidentify: bool = False) -> Path:
    """Write ``image`` (a :class:`medvae.io.images.Image`) as derived DICOM.

    A 2-D image becomes one file at ``path``. A volume becomes a series: a folder ``path`` (a ``.dcm``
    suffix is dropped) holding ``0001.dcm``, ``0002.dcm``, ... in slice order. Either appears whole or
    not at all (written under a temporary name, then renamed). ``deidentify``: each instance goes through
    :func:`medvae.io.deidentify.deidentify` before it is saved.

    Returns:
        the file or folder written.
    """
    from pydicom.uid import generate_uid

    path = Path(path)
    array = image.array
    if array.ndim == 3 and array.shape[2] == 1 and not image.dicom[1:]:
        array = array[:, :, 0]
    folder = path.with_suffix("") if path.suffix.lower() == ".dcm" else path
    target = path if array.ndim == 2 else folder
    if image.path is not None and target.resolve() == Path(image.path).resolve():
        raise InputError(f"{target} is the input; medvae never overwrites an input")
    if target.is_dir() and not is_medvae_series(target):
        raise InputError(f"{target}: a folder of that name exists and is not a DICOM series medvae wrote; "
                         "medvae replaces only its own series folders")
    if target.exists() and not (overwrite and target.is_dir() == (array.ndim == 3)):
        raise OutputExists(target)  # a batch counts it as skipped, as if it had been there at the start
    sources = list(image.dicom) or [None]
    series_uid = generate_uid()
    spacing = (image.spacing[1], image.spacing[0]) if image.spacing_known else None
    has_geometry = image.spacing_known and image.format in ("dicom", "nifti")
    geometry = _geometry(image.affine, array.shape) if has_geometry else None
    # a Secondary Capture volume keeps its slice positions too, so that it reads back as a volume
    frame_of_reference = generate_uid() if geometry and array.ndim == 3 else None
    slices = [array] if array.ndim == 2 else [array[:, :, k] for k in range(array.shape[2])]
    datasets = []
    for k, values in enumerate(slices):
        source = sources[k] if len(sources) == len(slices) else sources[0]
        slice_geometry = (geometry[0], geometry[1], geometry[2][k]) if geometry else None
        datasets.append(derived_dataset(values.T, source, operation=operation, synthetic=synthetic,
                                        series_uid=series_uid, instance=k + 1, geometry=slice_geometry,
                                        spacing=spacing, notes=image.notes, series_description=series_description,
                                        frame_of_reference=frame_of_reference, window=image.window))
    if deidentify:
        from medvae.io.deidentify import deidentify as strip

        for ds in datasets:
            strip(ds)
    if array.ndim == 2:
        from medvae.io.atomic import atomic_path

        with atomic_path(path) as tmp, quiet():
            datasets[0].save_as(tmp, enforce_file_format=True)
        return path
    from medvae.io.atomic import atomic_folder

    with atomic_folder(folder) as tmp, quiet():
        for k, ds in enumerate(datasets):
            ds.save_as(tmp / f"{k + 1:04d}.dcm", enforce_file_format=True)
    return folder
