"""Lung masks as DICOM Segmentation objects (highdicom), referencing the radiograph they were made from.

One binary segment per lung (1 right lung, 2 left lung; coded with SNOMED CT's right and left lung
structures), algorithm type AUTOMATIC naming medvae's ResUNet++. highdicom builds the IOD (frame of
reference, dimension index, derivation references) the way dciodvfy expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import medvae
from medvae.errors import InputError, OutputExists

SEGMENTS = ((1, "Right lung", "3341006"), (2, "Left lung", "44029006"))  # SNOMED CT right/left lung structure


def write_lung_seg(labels: np.ndarray, image, path: Path, *, overwrite: bool = False, deidentify: bool = False) -> Path:
    """Write ``labels`` (``(x, y)``: 1 right lung, 2 left lung) as a DICOM SEG of ``image``'s source file
    (de-identified with ``deidentify``: :mod:`medvae.io.deidentify`)."""
    import pydicom

    from medvae.io.dicom_header import quiet

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExists(path)  # a batch counts it as skipped, as if it had been there at the start
    if image.format != "dicom" or image.path is None:
        raise InputError(f"{image.path}: a DICOM Segmentation needs a DICOM source; use --format png or nii")
    with quiet():  # no header value quoted by pydicom or highdicom
        return _write(labels, image, path, pydicom.dcmread(image.path), deidentify)


def _write(labels, image, path: Path, source, deidentify: bool) -> Path:
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    from medvae.io.atomic import atomic_path

    from medvae.io.dicom_header import check_header, valid_copy

    # bad numbers are dropped (a 0\\0 PixelSpacing: no pixel size is better than a zero one) or refused, named
    check_header(source, image.path)
    for keyword in ("PatientSize", "PatientWeight"):
        if keyword in source and not valid_copy(source, keyword):
            del source[keyword]
    if str(source.get("PatientSex") or "") not in ("", "M", "F", "O"):
        source.PatientSex = ""  # highdicom refuses other values, quoting them
    algorithm = hd.AlgorithmIdentificationSequence(
        name="medvae ResUNet++", version=medvae.__version__, family=codes.cid7162.ArtificialIntelligence)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number, segment_label=name, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, segmented_property_category=codes.SCT.Organ,
            segmented_property_type=Code(code, "SCT", name),
        )
        for number, name, code in SEGMENTS
    ]
    pixels = np.ascontiguousarray(labels.T.astype(np.uint8))  # (rows, columns) like the source's pixel data
    try:
        seg = hd.seg.Segmentation(
            source_images=[source], pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="medvae",
            manufacturer_model_name="medvae segment", software_versions=medvae.__version__,
            device_serial_number="0", series_description="medvae lung segmentation",
        )
    except (ValueError, TypeError, AttributeError) as e:  # highdicom's words may quote a header value: not shown
        raise InputError(f"{image.path}: its header does not allow a DICOM Segmentation to be made of it "
                         f"({type(e).__name__} in highdicom); use --format png or nii") from e
    if "ImageOrientationPatient" not in source:  # projection radiographs: General Image's type 2C attribute
        seg.PatientOrientation = source.get("PatientOrientation", "")
    if deidentify:
        from medvae.io.deidentify import deidentify as strip

        strip(seg)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return path


def read_lung_seg(path: Path) -> np.ndarray:
    """The labels ``(x, y)`` of a lung SEG written by :func:`write_lung_seg`."""
    import pydicom

    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)  # one binary frame per segment
    labels = np.zeros((ds.Rows, ds.Columns), np.uint8)
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        labels[(frame > 0) & (labels == 0)] = number
    return labels.T
