"""``medvae score MODEL INPUT OUTPUT``: how anomalous each image looks to a VAE trained on normal images.

Each input (a file or a folder tree: DICOM, NIfTI, PNG, ...) is prepared as the model was trained (intensity
window, resized keeping its aspect, padded) and scored (:mod:`medvae.anomaly.scores`: reconstruction probability,
-ELBO, IWAE bound, reconstruction error; higher = more anomalous). ``OUTPUT/scores.csv`` has one row per input:
each score, its percentile among the model's held-out normal images (stored in the model file by ``train``, or
computed from ``normal``), and ``flagged``: whether ``recon_prob`` is above the threshold at which a share ``fpr``
of those normals would be flagged. With ``maps``, the per-pixel anomaly map of each input in its own geometry:
NIfTI with its affine, DICOM as a derived image, other formats a PNG heat overlay (``<name>.anomaly.*``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medvae.errors import UsageError

CSV_NAME = "scores.csv"
PRIMARY = "recon_prob"  # the score that flags
KINDS = ("conv_vae", "vae_gan", "mlp_vae")


def score(model: str | os.PathLike, input: str | os.PathLike, output: str | os.PathLike, *, samples: int = 16,
          seed: int = 0, fpr: float = 0.05, maps: bool = False, normal: str | os.PathLike | None = None,
          device: str = "auto", overwrite: bool = False, progress: bool = True, deidentify: bool = False,
          shard=None):
    """Score every image under ``input`` into the folder ``output``; returns ``(report, csv_path)``.

    Args:
        model: a VAE model file (``medvae train vae|vaegan``, or the MNIST demo's with ``normal``).
        samples, seed: latent samples per image, and their seed.
        fpr: the false-alarm rate on normal images that sets the flag's threshold.
        maps: also write each input's anomaly map (written maps are skipped unless ``overwrite``).
        normal: a folder of normal images to calibrate on instead of the scores stored in the model file.
        shard: ``"I/N"``: only that share of the inputs (:func:`medvae.io.batch.shard_inputs`; None: torchrun's).
    """
    from medvae.anomaly.calibration import normals_of, percentile, threshold
    from medvae.anomaly.scores import SCORES
    from medvae.checkpoint import load_model
    from medvae.io.batch import BatchReport, check_output_location, discover, shard_inputs
    from medvae.train import resolve_device

    input, output = Path(input), Path(output)
    if output.suffix:
        raise UsageError(f"output {output}: give a folder ({CSV_NAME} and the maps go in it)", param="output")
    check_output_location(input, output)
    threshold([0.0, 1.0], fpr)  # checks fpr before any work
    net, info = load_model(model, device=str(resolve_device(device)))
    if info.kind not in KINDS:
        raise UsageError(f"model {model}: a {info.kind} model does not score anomalies; give a VAE from "
                         "'medvae train vae' or 'medvae train vaegan'", param="model")
    net.eval()
    ignored: list = []
    inputs, share = shard_inputs(discover(input, ignored=ignored), shard)
    normals = (_calibrate(net, info, normal, samples, seed) if normal is not None else
               {name: normals_of(info, name) for name in SCORES})
    limit = threshold(normals[PRIMARY], fpr)
    report = BatchReport(ignored=ignored, shard=share)
    rows = []
    bar = inputs
    if progress and len(inputs) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(inputs, desc="scoring", unit="file", leave=False)
    for src in bar:
        try:
            values, map_path, notes = _score_one(net, info, src, input, output, samples, seed, maps, overwrite,
                                                 deidentify)
        except Exception as e:  # carry on: one bad file must not stop the batch
            report.record(src, output, e)
            continue
        row = {"input": str(src)}
        for name in SCORES:
            row[name] = round(values[name], 4)
            row[f"{name}_percentile"] = round(float(percentile(normals[name], [values[name]])[0]), 1)
        row["flagged"] = "yes" if values[PRIMARY] > limit else "no"
        row["map"] = str(map_path) if map_path else ""
        rows.append(row)
        report.done.append((src, map_path or output / CSV_NAME))
        report.notes += [(src, n) for n in notes]
    csv_path = _write_csv(rows, output / CSV_NAME, limit, fpr)
    return report, csv_path


def _prepare(info, image):
    from medvae.data.intensity import trained_normalize
    from medvae.data.transforms import prepare

    pre = info.preprocessing
    size = pre.get("size") or list(info.config.get("in_shape", [1, 28, 28])[1:])
    size = [size] * int(pre.get("spatial_dims", 2)) if isinstance(size, int) else size
    if image.array.ndim == len(size) + 1 and image.array.shape[-1] == 1:
        image = image.with_array(image.array[..., 0])
    return prepare(image, size, normalize=trained_normalize(pre))


def _score_one(net, info, src: Path, in_root: Path, out_root: Path, samples: int, seed: int, maps: bool,
               overwrite: bool, deidentify: bool):
    """``(scores {name: float}, map path or None, notes)`` for one input."""
    from medvae.anomaly.scores import anomaly_scores
    from medvae.io.batch import output_for
    from medvae.io.images import read_image

    image = read_image(src)
    prepared = _prepare(info, image)
    x = prepared.tensor.as_tensor()[None].to(next(net.parameters()).device)
    out = anomaly_scores(net, x, samples=samples, seed=seed)
    values = {name: float(v[0]) for name, v in out.scores.items()}
    if not maps:
        return values, None, list(image.notes)
    suffix = {"nifti": ".anomaly.nii.gz", "dicom": ".anomaly.dcm"}.get(image.format, ".anomaly.png")
    dst = output_for(src, in_root, out_root, suffix)
    if dst.exists() and not overwrite:
        return values, dst, [*image.notes, f"its map {dst} exists; kept (--overwrite redoes it)"]
    return values, _write_map(image, prepared, out.pixel_map[0, 0].cpu().numpy(), dst, deidentify), list(image.notes)


def _write_map(image, prepared, pixel_map: np.ndarray, dst: Path, deidentify: bool) -> Path:
    """The map ``(*size)`` in nats per pixel, back on the input's grid and written beside its kind of file."""
    from medvae.data.transforms import restore_map
    from medvae.io.images import write_image

    values = restore_map(pixel_map, prepared).reshape(image.array.shape)
    if image.format in ("nifti", "dicom"):
        out = image.with_array(values.astype(np.float32), window=None)
        out.notes = [*image.notes, "medvae anomaly map: -log p(x | z) per voxel, nats (higher = more anomalous)"]
        return write_image(out, dst, operation="anomaly map", overwrite=True, deidentify=deidentify)
    _write_heat(image, values, dst)
    return dst


def _write_heat(image, values: np.ndarray, dst: Path) -> None:
    """An RGB PNG: the image in grey with the map over it (inferno colours, transparent where low)."""
    from matplotlib import colormaps
    from PIL import Image as PILImage

    from medvae.data.intensity import intensity_window, scale_to_unit
    from medvae.io.atomic import atomic_path

    plane = image.plane()
    low, high = intensity_window(plane, "auto", window=image.window, name=str(image.path))
    gray = scale_to_unit(plane, low, high).T[..., None]
    heat = values.reshape(plane.shape).T
    lo, hi = np.percentile(heat, [50, 99.5])
    level = np.clip((heat - lo) / max(hi - lo, 1e-6), 0, 1)[..., None]
    rgb = (1 - 0.6 * level) * gray + 0.6 * level * colormaps["inferno"](level[..., 0])[..., :3]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        PILImage.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB").save(tmp, format="PNG")


def _calibrate(net, info, folder, samples: int, seed: int) -> dict[str, np.ndarray]:
    """Scores of the normal images under ``folder`` (instead of those stored in the model file)."""
    import torch

    from medvae.anomaly.scores import score_images
    from medvae.io.batch import discover
    from medvae.io.images import read_image

    tensors = [_prepare(info, read_image(p)).tensor.as_tensor() for p in discover(folder)]
    if len(tensors) < 10:
        raise UsageError(f"normal {folder}: {len(tensors)} images; calibrating a threshold needs at least 10 "
                         "normal images", param="normal")
    scores, _ = score_images(net, torch.stack(tensors), samples=samples, seed=seed)
    return {k: v.numpy() for k, v in scores.items()}


def _write_csv(rows: list[dict], path: Path, limit: float, fpr: float) -> Path:
    """``scores.csv``: this run's rows merged into what an earlier run or another shard wrote
    (:func:`medvae.io.tables.merge_rows`)."""
    from medvae.anomaly.scores import SCORES
    from medvae.io.tables import merge_rows

    columns = ["input", *[c for name in SCORES for c in (name, f"{name}_percentile")], "flagged", "threshold",
               "fpr", "map"]
    table = [{**row, "threshold": round(limit, 4), "fpr": fpr} for row in rows]
    return merge_rows(path, columns, [[row[c] for c in columns] for row in table])
