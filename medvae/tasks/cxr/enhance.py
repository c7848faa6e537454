"""``medvae enhance``: chest X-ray enhancement with a VAE-U-Net, for one file or a folder tree.

Each output keeps its input's format, size, geometry, dtype and intensity scale, so before and after
compare pixel by pixel: the image is mapped to [0, 1] by its own minimum and maximum (as in training),
enhanced, and mapped back to the same range and dtype. Radiographs larger than a tile go through MONAI's
``sliding_window_inference`` in tiles (Gaussian-weighted overlap), so memory depends on the tile, not
on the image. A folder goes through the batch runner with reading and writing overlapped with compute
(:func:`medvae.tasks.pipeline.pipelined`).

With no model the enhancer shipped in the package is used (see :mod:`medvae.pretrained`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.data.intensity import from_unit, to_unit
from medvae.errors import UsageError

DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 64


@dataclass
class EnhanceOptions:
    """How ``enhance`` runs. ``tile``: the largest tile side (pixels) before an image is split; ``overlap``:
    pixels shared by neighbouring tiles; ``compare``: a folder for before/after PNGs; ``check``: say which
    inputs do not look like frontal chest films, by the lung segmenter ``checker`` (None: the packaged one;
    see :mod:`medvae.tasks.cxr.chest_check`); ``compile``: compile the enhancer's forward pass with
    ``torch.compile`` (faster per film, a compile on the first; eager where it cannot compile;
    :mod:`medvae.tasks.cxr.compiled`)."""

    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    compare: Path | None = None
    device: str = "auto"
    check: bool = True
    checker: Path | None = None
    deidentify: bool = False  # DICOM outputs de-identified (medvae.io.deidentify)
    compile: bool = False  # run the enhancer through torch.compile (medvae.tasks.cxr.compiled)


def tiling(shape: tuple[int, ...], tile: int, overlap: int, multiple: int) -> tuple[list[int], list[float]]:
    """``(roi, overlap fractions)`` for MONAI's sliding window: the fewest tiles of at most about ``tile``
    pixels per axis, each a multiple of ``multiple``, neighbours sharing at least ``overlap`` pixels."""
    roi, fractions = [], []
    for size in shape:
        n = -(-size // tile)  # tiles along this axis
        edge = -(-(-(-size // n) + (overlap if n > 1 else 0)) // multiple) * multiple
        if edge >= size:  # one tile covers the axis (MONAI pads it)
            n, edge = 1, -(-size // multiple) * multiple
        roi.append(edge)
        # MONAI steps int(edge * (1 - fraction)) pixels: ask for the step that gives exactly n tiles
        step = -(-(size - edge) // (n - 1)) if n > 1 else edge
        fractions.append(0.0 if n == 1 else 1 - (step + 0.5) / edge)
    return roi, fractions


def inference_forward(model):
    """The enhancer's deterministic forward pass as a plain function of a window ``(B, C, *spatial)``, the
    model in eval mode (what :meth:`EnhancerModel.enhance` computes, with nothing for ``torch.compile`` to
    break its graph on)."""
    model.eval()
    return lambda window: model(window, sample=False).image.clamp(0, 1)


def enhance_array(model, unit: np.ndarray, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                  forward=None) -> np.ndarray:
    """Enhance a 2-D image in [0, 1], shape ``(x, y)``, by tiles; returns the same shape in [0, 1].

    Images up to ``tile`` pixels a side go through in one pass; larger ones in the fewest tiles that
    cover them, overlapping by ``overlap`` pixels and blended with Gaussian weights (MONAI's
    ``sliding_window_inference``). Batch-normalised models run in channels-last memory order, which
    oneDNN convolves about 1.5x faster on CPUs. ``forward``: what runs each window (default:
    ``model.enhance``; ``medvae enhance --compile`` passes a compiled :func:`inference_forward`).
    """
    import torch
    from monai.inferers import sliding_window_inference

    multiple = model.config.multiple
    if tile < 2 * multiple or overlap < 0:
        raise UsageError(f"tile {tile} must be at least {2 * multiple} and overlap {overlap} not negative", param="tile")
    device = next(model.parameters()).device
    channels_last = model.config.norm.upper() != "INSTANCE" and unit.ndim == 2
    x = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))[None, None].to(device)
    roi, fractions = tiling(unit.shape, tile, overlap, multiple)

    run = forward or model.enhance

    def predict(window):
        if channels_last:
            window = window.contiguous(memory_format=torch.channels_last)
        return run(window)

    if channels_last:
        model.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = sliding_window_inference(x, roi, 1, predict, overlap=fractions, mode="gaussian",
                                       padding_mode="replicate")
    return out[0, 0].float().clamp(0, 1).cpu().numpy()


def enhance_values(model, array: np.ndarray, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                   forward=None) -> np.ndarray:
    """Enhance a 2-D array of any range and dtype as ``medvae enhance`` does: mapped to [0, 1] by its own
    minimum and maximum, enhanced, mapped back into the same range and dtype."""
    unit, low, high = to_unit(array)
    return from_unit(enhance_array(model, unit, tile=tile, overlap=overlap, forward=forward), low, high, array.dtype)


def enhance_image(model, image, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, forward=None):
    """Enhance a radiograph (a :class:`medvae.io.images.Image`): same shape, dtype, geometry and value range."""
    array = image.plane("enhance takes 2-D radiographs")
    result = enhance_values(model, array, tile=tile, overlap=overlap, forward=forward).reshape(image.array.shape)
    enhanced = image.with_array(result)
    enhanced.notes.append("enhanced by a medvae VAE-U-Net")
    return enhanced


def own_suffix(path: Path) -> str:
    """The suffix that names ``path``'s format (``.nii.gz``, ``.png``; ``""`` for a DICOM named without one)."""
    from medvae.io.batch import strip_suffix

    return path.name[len(strip_suffix(path.name)):]


def write_compare(before, after, folder: Path, name: str) -> None:
    """``folder/name.before.png`` and ``.after.png``, 8-bit, both through the same display window."""
    from medvae.data.intensity import intensity_window, to_display
    from medvae.io.images import Image, write_image

    low, high = intensity_window(before.array, "auto", window=before.window, name=str(before.path))
    folder.mkdir(parents=True, exist_ok=True)
    for tag, image in (("before", before), ("after", after)):
        write_image(Image(array=to_display(image.plane(), low, high), format="png", bits=8), folder / f"{name}.{tag}.png")


def enhance(input: str | os.PathLike, output: str | os.PathLike, *, model: str | os.PathLike | None = None,
            options: EnhanceOptions | None = None, overwrite: bool = False, progress: bool = True, shard=None):
    """Enhance one radiograph or every image under a folder (recursively) into ``output``.

    Args:
        input: a file, or a folder (its tree is mirrored under ``output``).
        output: the output file (for a file input) or folder.
        model: an enhancer model file; None uses the packaged one.
        options: tile size, overlap, before/after folder, device.
        overwrite: redo outputs that exist (otherwise they are skipped).
        shard: ``"I/N"``: only that share of the inputs (:func:`medvae.io.batch.shard_inputs`; None: torchrun's).

    Returns:
        the :class:`medvae.io.batch.BatchReport`.
    """
    from medvae.io.batch import check_output_location, discover, run_batch, shard_inputs
    from medvae.io.images import format_from_suffix, read_image, write_image
    from medvae.tasks.pipeline import pipelined
    from medvae.checkpoint import load_model_of_kind
    from medvae.tasks.cxr.chest_check import CSV_NAME, check_image, verdict_text, write_check_csv
    from medvae.train import resolve_device

    options = options or EnhanceOptions()
    if not 0 <= options.overlap < options.tile // 2:
        raise UsageError(f"overlap must be between 0 and half the tile ({options.tile // 2}), got {options.overlap}", param="overlap")
    input, output = Path(input), Path(output)
    single = input.is_file() and format_from_suffix(output) is not None
    check_output_location(input, output)
    if single and output.resolve() == input.resolve():
        raise UsageError(f"output {output} is the input; medvae never overwrites an input", param="output")
    if options.compare is not None:
        check_output_location(input, options.compare)
    ignored: list = []
    inputs, share = shard_inputs(discover(input, ignored=ignored), shard)
    device = str(resolve_device(options.device))
    net, _ = load_model_of_kind(model, "enhancer", device=device)
    forward = None
    if options.compile:
        from medvae.tasks.cxr.compiled import Compiled
        from medvae.train.report import note

        note("compiling the enhancer with torch.compile on the first film (tens of seconds the first time on a "
             "machine, a few once cached)")
        forward = Compiled(inference_forward(net), on_fallback=note)
    checker = load_model_of_kind(options.checker, "segmenter", "checker", device=device) if options.check else None
    verdicts: dict[str, tuple[str, str]] = {}

    def compute(image):
        enhanced = enhance_image(net, image, tile=options.tile, overlap=options.overlap, forward=forward)
        verdict = None
        if checker is not None:
            verdict = check_image(*checker, to_unit(image.plane())[0])
        return enhanced, verdict

    def write(src: Path, dst: Path, image, result) -> tuple[Path, list[str]]:
        result, verdict = result
        # a folder keeps each input's format; one output file named with a suffix gets that format
        written = write_image(result, dst, fmt=None if single else image.format,
                              operation="enhance (medvae VAE-U-Net)", overwrite=overwrite,
                              deidentify=options.deidentify)
        if options.compare is not None:
            rel = src.relative_to(input) if src != input else Path(src.name)
            write_compare(image, result, options.compare / rel.parent, rel.name)
        verdicts[str(src)] = (str(written), verdict_text(verdict))
        return written, [verdict.note()] if verdict is not None and not verdict.ok else []

    with pipelined(inputs, read_image, compute, write) as process:
        report = run_batch(inputs, input, output, process, suffix=own_suffix, overwrite=overwrite,
                           progress=progress, single_output=output if single else None, desc="enhancing",
                           ignored=ignored, shard=share)
    if verdicts and not single and checker is not None:
        write_check_csv(output / CSV_NAME, verdicts)
    return report

