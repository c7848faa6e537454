"""DICOM patient geometry for the reader: the few geometry elements in the DICOM JSON model, and the RAS
affine built from them exactly as MONAI's ``PydicomReader`` built it (so that files read as before, without
importing MONAI)."""

from __future__ import annotations

import numpy as np

SPATIAL_SHAPE = "spatial_shape"  # MONAI's MetaKeys name, as the reader's metadata uses it

#: the DICOM JSON keys MONAI's pruned metadata kept that the geometry uses: ImageOrientationPatient,
#: ImagePositionPatient, PixelSpacing
GEOMETRY_TAGS = (0x00200037, 0x00200032, 0x00280030)


def geometry_json(ds) -> dict:
    """The geometry attributes of ``ds`` in the DICOM JSON model, as MONAI's pruned metadata held them
    (``ds.to_json_dict(suppress_invalid_tags=True)``, kept to these keys): a value pydicom cannot read
    strictly is left out, as MONAI left it out. Only these few elements are converted, not the whole file
    (which base64-encoded the pixel data)."""
    from pydicom import config

    meta = {}
    with config.strict_reading():
        for tag in GEOMETRY_TAGS:
            if tag in ds:
                try:
                    meta[f"{tag:08X}"] = ds[tag].to_json_dict(bulk_data_element_handler=None,
                                                                bulk_data_threshold=1024)
                except Exception:  # as Dataset.to_json_dict(suppress_invalid_tags=True): drop the tag
                    pass
    return meta


def _raise_if_not_finite(values, tag: str) -> None:  # MONAI's words, so that errors read as they did
    if not np.isfinite(tuple(values)).all():
        raise ValueError(f"PydicomReader: cannot derive affine matrix because DICOM tag {tag} "
                         "has a non-finite value.")  # the value itself is never shown


def affine_of(metadata: dict) -> np.ndarray:
    """The RAS affine of (rows, columns[, slices]) indices, as MONAI's ``PydicomReader._get_affine`` builds it
    (identity when the position or orientation is missing; the slice step from the last slice's position)."""
    affine = np.eye(4)
    if not ("00200037" in metadata and "00200032" in metadata):
        return affine
    rx, ry, rz, cx, cy, cz = metadata["00200037"]["Value"]
    _raise_if_not_finite((rx, ry, rz, cx, cy, cz), "ImageOrientationPatient (0020,0037)")
    sx, sy, sz = metadata["00200032"]["Value"]
    _raise_if_not_finite((sx, sy, sz), "ImagePositionPatient (0020,0032)")
    spacing = metadata["00280030"]["Value"] if "00280030" in metadata else (1.0, 1.0)
    _raise_if_not_finite(tuple(spacing), "PixelSpacing (0028,0030)")
    dr, dc = metadata.get("spacing", spacing)[:2]
    _raise_if_not_finite((dr, dc), "spacing")
    affine[0, 0] = cx * dr
    affine[0, 1] = rx * dc
    affine[0, 3] = sx
    affine[1, 0] = cy * dr
    affine[1, 1] = ry * dc
    affine[1, 3] = sy
    affine[2, 0] = cz * dr
    affine[2, 1] = rz * dc
    affine[2, 2] = 1.0
    affine[2, 3] = sz
    if "lastImagePositionPatient" in metadata:
        t1n, t2n, t3n = metadata["lastImagePositionPatient"]
        _raise_if_not_finite((t1n, t2n, t3n), "lastImagePositionPatient")
        n = metadata[SPATIAL_SHAPE][-1]
        if n > 1:
            affine[0, 2] = (t1n - sx) / (n - 1)
            affine[1, 2] = (t2n - sy) / (n - 1)
            affine[2, 2] = (t3n - sz) / (n - 1)
    if not np.isfinite(affine).all():
        raise ValueError("PydicomReader: affine matrix not finite after composition.")
    return np.diag([-1, -1, 1, 1]).astype(affine.dtype) @ affine  # LPS to RAS
