"""``medvae convert IN OUT``: medical images from one format to another, one file or a whole tree.

Intensity rules (``normalize``):

* ``auto`` (default): to PNG/TIFF/JPEG, a DICOM or NIfTI gets its DICOM window, or else the
  0.5..99.5 percentile window, mapped to 0..255 (``bits=16``: 0..65535); a PNG, TIFF, JPEG or .npy whose
  values already fit is copied as it is. To NIfTI, DICOM or .npy, values are kept as they are.
* ``none``: values kept (a PNG refuses values it cannot hold, with a message saying what to pass).
* ``percentile``, ``window``, ``minmax``: that window, mapped to the display range for PNG/TIFF/JPEG
  and to 0..1 floats for NIfTI, DICOM and .npy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import UsageError


@dataclass
class ConvertOptions:
    """How :func:`convert` writes each image (see the module docstring)."""

    fmt: str
    normalize: str = "auto"
    bits: int = 8
    deidentify: bool = False


def convert(input: str | os.PathLike, output: str | os.PathLike, *, fmt: str | None = None,
            normalize: str = "auto", bits: int = 8, series: bool = False, overwrite: bool = False,
            deidentify: bool = False, shard=None,
            progress: bool = True):
    """Convert an image file, a DICOM series folder, or every image under a folder.

    Args:
        input: a file, or a folder searched recursively.
        output: for a file, the output file (its suffix picks the format) or a folder; for a folder,
            the output folder, which mirrors the input tree and may not lie inside it.
        fmt: ``png``, ``tiff``, ``jpeg``, ``nii``, ``dcm`` or ``npy``; default from ``output``'s suffix.
        normalize: ``auto``, ``none``, ``percentile``, ``window`` or ``minmax``.
        bits: 8 or 16, the depth of PNG/TIFF output when an intensity window is applied.
        series: read each folder of DICOM files as one volume instead of file by file.
        overwrite: redo outputs that already exist (otherwise they are skipped).
        progress: show a progress bar.

    Returns:
        a :class:`medvae.io.batch.BatchReport`; ``report.exit_code`` is 1 if any input failed.
    """
    from medvae.io.batch import discover, run_batch, shard_inputs
    from medvae.data.intensity import check_normalize
    from medvae.io.images import SUFFIXES, format_from_suffix, normalize_format

    input, output = Path(input), Path(output)
    check_normalize(normalize)
    if bits not in (8, 16):
        raise UsageError(f"bits must be 8 or 16, got {bits}", param="bits")
    named = format_from_suffix(output)
    fmt = normalize_format(fmt) if fmt else None
    if fmt and named and fmt != named:
        raise UsageError(f"format {fmt} does not match the output name {output.name}; drop --format or rename", param="format")
    fmt = fmt or named
    if fmt is None:
        raise UsageError(f"format: cannot tell it from {output}; pass --format png|tiff|jpeg|nii|dcm|npy "
                         "or give the output a suffix", param="format")
    single_file = input.is_file() or (series and input.is_dir() and not any(p.is_dir() for p in input.iterdir()))
    if input.is_dir() and named and not single_file:
        from medvae.io.batch import strip_suffix

        drop = f"drop the {output.name[len(strip_suffix(output.name)):]} suffix and pass --format {fmt}"
        if series:
            raise UsageError(f"output {output}: {input} has subfolders, and with --series each folder of DICOM files "
                             f"is one volume, so the output must be a folder ({drop}); to convert one series to "
                             "one file, give that series' folder", param="output")
        raise UsageError(f"output {output}: the input is a folder, so the output must be a folder ({drop}), or "
                         "pass --series to read a folder holding one DICOM series as a volume", param="output")
    suffix = ".nii.gz" if fmt == "nifti" else SUFFIXES[fmt][0]
    options = ConvertOptions(fmt=fmt, normalize=normalize, bits=bits, deidentify=deidentify)
    if input.exists() and output.exists() and input.resolve() == output.resolve():
        raise UsageError(f"output {output} is the input; medvae never overwrites an input", param="output")
    ignored: list = []
    inputs, share = shard_inputs(discover(input, series=series, ignored=ignored), shard)
    exact = output if single_file and named else None
    out_root = output.parent if exact is not None else output
    return run_batch(inputs, input, out_root, lambda src, dst: convert_one(src, dst, options),
                     suffix=suffix, overwrite=overwrite, progress=progress, single_output=exact,
                     ignored=ignored, shard=share)


def convert_one(src: Path, dst: Path, options: ConvertOptions) -> tuple[Path, list[str]]:
    """Read ``src``, apply the intensity rule, write ``dst``; return the path written and the notes made."""
    from medvae.io.images import read_image, write_image

    image = read_image(src)
    out = for_output(image, options)
    written = write_image(out, dst, fmt=options.fmt, operation="convert", overwrite=True,
                          deidentify=options.deidentify)
    return written, out.notes


def for_output(image, options: ConvertOptions):
    """The image to write: the same one, or a copy with an intensity window applied and a note saying so."""
    from medvae.data.intensity import intensity_window, scale_to_unit, to_display, voi_lut_to_unit
    from medvae.io.images import DISPLAY_FORMATS

    display = options.fmt in DISPLAY_FORMATS
    normalize = options.normalize
    if normalize == "auto":
        if not display or (image.format in (*DISPLAY_FORMATS, "npy") and _fits(image.array, options.fmt)):
            normalize = "none"
    if normalize in ("auto", "window") and image.window is None:
        unit = voi_lut_to_unit(image)  # a VOI LUT Sequence instead of a window: apply it as the modality intends
        if unit is not None:
            bits = 8 if options.fmt == "jpeg" else options.bits
            top = 2**bits - 1 if display else 1
            out = image.with_array(to_display(unit, 0.0, 1.0, bits) if display else unit, bits=bits if display
                                   else image.bits, value_range=(0, top), window=None)
            out.notes.append(f"DICOM VOI LUT applied, mapped to 0..{top}")
            return out
    bounds = intensity_window(image.array, normalize, window=image.window, name=str(image.path))
    if bounds is None:
        return image
    low, high = bounds
    if display:
        bits = 8 if options.fmt == "jpeg" else options.bits
        note = f"intensities {low:g}..{high:g} mapped to 0..{2**bits - 1}"
        out = image.with_array(to_display(image.array, low, high, bits), bits=bits, value_range=(0, 2**bits - 1),
                               window=None)
    else:
        note = f"intensities {low:g}..{high:g} mapped to 0..1"
        out = image.with_array(scale_to_unit(image.array, low, high), value_range=(0.0, 1.0), window=None)
    out.notes.append(note)
    return out


def _fits(array: np.ndarray, fmt: str) -> bool:
    """Whether ``array``'s values can be written to ``fmt`` unchanged."""
    if array.size == 0 or array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        return False
    return float(array.min()) >= 0 and float(array.max()) <= (255 if fmt == "jpeg" else 65535)
