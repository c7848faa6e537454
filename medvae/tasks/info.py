"""``medvae info PATH``: what a file is, an image (shape, spacing, modality, intensities), a DICOM Segmentation
(its segments and frames) or a model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a medvae model file, or an image file or DICOM series folder.

    Patient-identifying DICOM attributes are never included.

    Raises:
        InputError: the path is missing or is neither a model nor a readable image (one line naming it).
    """
    from medvae.io.images import sniff_format
    from medvae.errors import InputError

    path = Path(path)
    if path.is_file() and path.stat().st_size > 0 and sniff_format(path) is None:
        with open(path, "rb") as f:
            looks_like_model = f.read(9)[8:9] == b"{"  # safetensors: 8-byte header length, then JSON
        if not (looks_like_model or path.suffix == ".safetensors"):
            raise InputError(f"{path}: neither an image medvae reads (DICOM, NIfTI, PNG, TIFF, JPEG, .npy) "
                             "nor a medvae model file")
        from medvae.checkpoint import read_model_info

        return {"type": "model", **read_model_info(path).to_dict()}
    if path.is_file() and sniff_format(path) == "dicom":
        segmentation = describe_segmentation(path)
        if segmentation is not None:
            return segmentation
    return describe_image(path)


def describe_segmentation(path: Path) -> dict[str, Any] | None:
    """A DICOM Segmentation (what ``segment --format dcm`` writes): its segments, frames, size and pixel
    spacing, and the pixels each segment marks; None when ``path`` is not a SEG. No patient attributes."""
    import numpy as np
    import pydicom

    from medvae.errors import InputError, first_line

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as e:
        raise InputError(f"{path}: not a readable DICOM file ({first_line(e)})") from e
    if "SegmentSequence" not in header:
        return None
    ds = pydicom.dcmread(path, force=True)
    rows, columns = int(ds.Rows), int(ds.Columns)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    try:
        pixels = ds.pixel_array.reshape(frames, rows, columns)
    except Exception:  # the segments are still described without their pixels
        pixels = None
    numbers = [int(g.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
               for g in getattr(ds, "PerFrameFunctionalGroupsSequence", [])]
    segments = []
    for item in ds.SegmentSequence:
        number = int(item.SegmentNumber)
        own = [i for i, n in enumerate(numbers) if n == number]
        prop = item.SegmentedPropertyTypeCodeSequence[0] if "SegmentedPropertyTypeCodeSequence" in item else None
        segments.append({
            "number": number,
            "label": str(getattr(item, "SegmentLabel", "")),
            "property": str(prop.CodeMeaning) if prop is not None else "",
            "property_code": f"{prop.CodingSchemeDesignator} {prop.CodeValue}" if prop is not None else "",
            "algorithm": str(getattr(item, "SegmentAlgorithmType", "")),
            "frames": len(own),
            "pixels": int(sum(int(np.count_nonzero(pixels[i])) for i in own)) if pixels is not None else None,
        })
    spacing = None
    try:
        measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        spacing = [float(v) for v in measures.PixelSpacing]
    except (AttributeError, IndexError, KeyError):
        pass
    return {
        "type": "segmentation",
        "path": str(path),
        "format": "dicom",
        "sop_class": _uid_name(getattr(ds, "SOPClassUID", "")),
        "transfer_syntax": _uid_name(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")),
        "segmentation_type": str(getattr(ds, "SegmentationType", "")),
        "rows": rows, "columns": columns, "frames": frames,
        "spacing_mm": spacing,
        "series_description": _own_text(ds, "SeriesDescription"),
        "software": _own_text(ds, "ManufacturerModelName"),
        "referenced_images": sum(len(getattr(s, "ReferencedInstanceSequence", []))
                                 for s in getattr(ds, "ReferencedSeriesSequence", [])),
        "segments": segments,
    }


def describe_image(path: Path) -> dict[str, Any]:
    """Shape, spacing, orientation, modality, photometric interpretation and intensity range of an image."""
    import numpy as np

    from medvae.io.images import read_image

    image = read_image(path)
    a = image.array
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    out: dict[str, Any] = {
        "type": "image",
        "path": str(path),
        "format": image.format,
        "shape": list(a.shape),
        "spatial_dims": image.spatial_dims,
        "dtype": str(a.dtype),
        "spacing_mm": [round(s, 6) for s in image.spacing] if image.spacing_known else None,
        "orientation": _axcodes(image.affine, a.ndim) if image.spacing_known else None,
        "affine": [[round(float(v), 6) for v in row] for row in image.affine],
        "intensity": {"min": float(finite.min()) if finite.size else None,
                      "max": float(finite.max()) if finite.size else None,
                      "mean": float(finite.mean()) if finite.size else None},
        "bits": image.bits,
        "notes": image.notes,
    }
    if image.format == "dicom":
        ds = image.dicom[0]
        out["dicom"] = {
            "modality": image.modality,
            "sop_class": _uid_name(getattr(ds, "SOPClassUID", "")),
            "transfer_syntax": _uid_name(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")),
            "photometric_interpretation": image.photometric,
            "files": len(image.dicom),
            "body_part": str(getattr(ds, "BodyPartExamined", "")),
            "series_description": _own_text(ds, "SeriesDescription"),
            "image_type": list(getattr(ds, "ImageType", [])),
            "derivation": _own_text(ds, "DerivationDescription"),
            "window": list(image.window) if image.window else None,
            "value_range": list(image.value_range) if image.value_range else None,
        }
    return out


def _axcodes(affine, ndim: int) -> str | None:
    """Orientation letters (``"RAS"``, ``"LPS"``) of the array axes, or None for a degenerate affine."""
    import nibabel as nib

    codes = nib.aff2axcodes(affine)[:ndim]
    return "".join(codes) if None not in codes else None


def _own_text(ds, keyword: str) -> str:
    """A free-text attribute as ``info`` shows it: only where medvae wrote the file (its Manufacturer ``medvae`` and
    the text medvae's own), since elsewhere such text can hold a patient's data; else ""."""
    from medvae.io.dicom_header import quiet

    with quiet():
        try:
            text = str(ds.get(keyword, "") or "")
            ours = str(ds.get("Manufacturer", "") or "") == "medvae"
        except Exception:  # a value pydicom cannot even decode
            return ""
    return text if ours and text.startswith("medvae") else ""


def _uid_name(uid) -> str:
    return getattr(uid, "name", str(uid)) if uid else ""


def _short(key: str, value) -> str:
    """A preprocessing value as ``info`` shows it: the stored normal scores summarised, the rest as they are."""
    if key == "anomaly" and isinstance(value, dict):
        return (f"scores of {value.get('images')} held-out normal images ({value.get('samples')} samples each: "
                f"{', '.join(value.get('scores') or {})})")
    return str(value)


def format_description(info: dict[str, Any]) -> str:
    """Human-readable text for :func:`describe`'s result (the long per-epoch lists are summarised)."""
    if info["type"] == "image":
        return _format_image(info)
    if info["type"] == "segmentation":
        return _format_segmentation(info)
    lines = [f"{info['path']}: medvae model, kind {info['kind']} (medvae {info['medvae_version']})",
             f"  parameters: {info['n_parameters']:,} in {info['n_tensors']} tensors"]
    lines.append("  config: " + ", ".join(f"{k}={v}" for k, v in info["config"].items()))
    if info["preprocessing"]:
        lines.append("  preprocessing: " + ", ".join(f"{k}={_short(k, v)}" for k, v in info["preprocessing"].items()))
    t = info["training"]
    if t:
        lines.append("  training:")
        for key in ("task", "data", "train_images", "test_images", "epochs", "batch_size", "lr", "seed", "device",
                    "world_size", "samples_per_second", "train_seconds", "history", "command"):
            if key in t:
                v = t[key]
                if isinstance(v, list) and len(v) > 4 and key != "history":  # long image lists: count and ends
                    v = f"{len(v)}: {v[0]}, {v[1]}, ..., {v[-1]}"
                lines.append(f"    {key}: {v:g}" if isinstance(v, float) else f"    {key}: {v}")
        if t.get("train_loss"):
            lines.append(f"    final train loss: {t['train_loss'][-1]:.3f}")
        if t.get("val_loss"):
            lines.append(f"    final validation loss: {t['val_loss'][-1]:.3f}")
    return "\n".join(lines)


def _format_image(info: dict[str, Any]) -> str:
    shape = " x ".join(str(n) for n in info["shape"])
    axes = "(x, y)" if info["spatial_dims"] == 2 else "(x, y, z)"
    lines = [f"{info['path']}: {info['format'].upper()} image, {shape} {axes}, {info['dtype']}"]
    if info["spacing_mm"]:
        lines.append("  spacing: " + " x ".join(f"{s:g}" for s in info["spacing_mm"]) + " mm"
                     + (f", orientation {info['orientation']}" if info["orientation"] else ""))
    else:
        lines.append("  spacing: unknown (no pixel size in the file)")
    i = info["intensity"]
    if i["min"] is not None:
        lines.append(f"  intensity: {i['min']:g} .. {i['max']:g} (mean {i['mean']:.4g})"
                     + (f", {info['bits']} bits stored" if info["bits"] else ""))
    d = info.get("dicom")
    if d:
        lines.append(f"  modality: {d['modality'] or '?'}, {d['sop_class']}, {d['photometric_interpretation']}"
                     f", {d['transfer_syntax']}" + (f", {d['files']} files" if d["files"] > 1 else ""))
        if d["window"]:
            lines.append(f"  window: center {d['window'][0]:g}, width {d['window'][1]:g}")
        if d["derivation"]:
            lines.append(f"  derived: {d['derivation']}")
    for note in info["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _format_segmentation(info: dict[str, Any]) -> str:
    from medvae.errors import count

    kind = info["segmentation_type"].lower() or "a"
    lines = [f"{info['path']}: DICOM Segmentation ({kind}), {count(len(info['segments']), 'segment')} in "
             f"{count(info['frames'], 'frame')} of {info['columns']} x {info['rows']} (columns x rows)"]
    if info["spacing_mm"]:
        lines.append("  spacing: " + " x ".join(f"{s:g}" for s in info["spacing_mm"]) + " mm (rows, columns)")
    else:
        lines.append("  spacing: unknown (no pixel size in the file)")
    for s in info["segments"]:
        pixels = f", {count(s['pixels'], 'pixel')}" if s["pixels"] is not None else ""
        named = s["property"] if s["property"] and s["property"] != s["label"] else ""
        what = f" ({', '.join(v for v in (named, s['property_code']) if v)})" if named or s["property_code"] else ""
        lines.append(f"  segment {s['number']}: {s['label']}{what}, {s['algorithm'].lower() or 'unknown'} "
                     f"algorithm, {count(s['frames'], 'frame')}{pixels}")
    made = ", ".join(v for v in (info["series_description"], info["software"]) if v)
    if made:
        lines.append(f"  series: {made}")
    if info["referenced_images"]:
        lines.append(f"  source: {count(info['referenced_images'], 'referenced image')}")
    lines.append(f"  {info['sop_class']}, {info['transfer_syntax']}")
    return "\n".join(lines)
