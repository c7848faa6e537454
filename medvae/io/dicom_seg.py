"""Lung masks as DICOM Segmentation objects (highdicom), referencing the radiograph they were made from.

One binary segment per lung (1 right lung, 2 left lung; coded with SNOMED CT's right and left lung
structures), algorithm type AUTOMATIC naming medvae's ResUNet++. highdicom builds the IOD (frame of
reference, dimension index, derivation references) the way dciodvfy expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import medvae
from medvae.errors import InputError

SEGMENTS = ((1, "Right lung", "3341006"), (2, "Left lung", "44029006"))  # SNOMED CT right/left lung structure


def write_lung_seg(labels: np.ndarray, image, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``labels`` (``(x, y)``: 1 right lung, 2 left lung) as a DICOM SEG of ``image``'s source file."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    from medvae.io.atomic import atomic_path

    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (pass --overwrite to replace it)")
    if image.format != "dicom" or image.path is None:
        raise InputError(f"{image.path}: a DICOM Segmentation needs a DICOM source; use --format png or nii")
    source = pydicom.dcmread(image.path)
    spacing = source.get("PixelSpacing")
    if spacing is not None and not all(float(v) > 0 for v in spacing):
        del source.PixelSpacing  # a real-world quirk (0\\0): no pixel size is better than a zero one
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
    seg = hd.seg.Segmentation(
        source_images=[source], pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="medvae",
        manufacturer_model_name="medvae segment", software_versions=medvae.__version__,
        device_serial_number="0", series_description="medvae lung segmentation",
    )
    if "ImageOrientationPatient" not in source:  # projection radiographs: General Image's type 2C attribute
        seg.PatientOrientation = source.get("PatientOrientation", "")
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
