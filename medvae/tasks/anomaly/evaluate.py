"""``medvae evaluate anomaly MODEL``: how well the model's scores separate anomalous from normal images.

Two ways to give the images:

* ``data="mnist"`` with ``anomaly_digit=D`` (An & Cho's protocol): the model was trained on the embedded sample's
  training split without digit D (``train vae --data mnist --digits ...``); the test split's other digits are the
  normals and its D images the anomalies;
* ``normal`` and ``anomalous`` folders of held-out images (never seen in training); with ``masks``, a folder
  mirroring ``anomalous`` (the same relative names) of lesion masks (any non-zero value is abnormal), for pixel
  AUROC/AUPRC and ⌈Dice⌉ of the per-pixel maps beside two pixel baselines: the intensity itself (as FLAIR
  thresholding does) and the voxel-wise z-score against the normal training images.

Every score of :mod:`medvae.anomaly.scores` is reported (AUROC, AUPRC with the prevalence, TPR at 5 % FPR) beside
:mod:`medvae.anomaly.baselines`, fitted in the same process on the normal training images (for MNIST the training
split's digits other than D; for folders ``fit``, by default the folder the model was trained on).
"""

from __future__ import annotations

import os
from pathlib import Path

from medvae.errors import UsageError


def evaluate_anomaly(model: str | os.PathLike, *, data: str | None = None, anomaly_digit: int | None = None,
                     normal: str | os.PathLike | None = None, anomalous: str | os.PathLike | None = None,
                     fit: str | os.PathLike | None = None, masks: str | os.PathLike | None = None,
                     samples: int = 16, seed: int = 0,
                     baseline_epochs: int | None = None, limit: int | None = None, device: str = "auto",
                     progress: bool = False) -> dict:
    """The metrics of every score and baseline; see the module docstring. ``limit``: at most this many images of
    each group (normal, anomalous, training)."""
    import torch

    from medvae.anomaly.baselines import fit_baselines
    from medvae.anomaly.metrics import detection_metrics
    from medvae.anomaly.scores import SCORES, score_images
    from medvae.checkpoint import load_model
    from medvae.train import resolve_device

    net, info = load_model(model, device=str(resolve_device(device)))
    net.eval()
    if data == "mnist":
        train, test_normal, test_anomalous, described = _mnist(info, anomaly_digit, limit)
        anomalous_files = []
    elif data is not None:
        raise UsageError(f"data must be 'mnist' (or give --normal and --anomalous folders), got {data!r}", param="data")
    else:
        if normal is None or anomalous is None:
            raise UsageError("normal: give --normal and --anomalous folders of held-out images, or --data mnist "
                             "--anomaly-digit D", param="normal")
        train, test_normal, test_anomalous, described, anomalous_files = _folders(info, normal, anomalous, fit, limit)
    if masks is not None and data is not None:
        raise UsageError("masks go with --normal and --anomalous folders, not with --data mnist", param="masks")
    rows = {}
    want_maps = masks is not None
    scores_n, maps_n = score_images(net, test_normal, samples=samples, seed=seed, progress=progress, maps=want_maps)
    scores_a, maps_a = score_images(net, test_anomalous, samples=samples, seed=seed + 10_000, progress=progress,
                                    maps=want_maps)
    for name in SCORES:
        rows[name] = detection_metrics(scores_n[name].numpy(), scores_a[name].numpy())
        bad = int((~torch.isfinite(torch.cat([scores_n[name], scores_a[name]]))).sum())
        if bad:  # ranked as the most anomalous (medvae.anomaly.metrics.rankable); said, not hidden
            rows[name]["non_finite"] = bad
    epochs = baseline_epochs or int((info.training or {}).get("epochs") or 10)
    with torch.random.fork_rng():
        baselines = fit_baselines(train, model_kind=info.kind, model_config=info.config, epochs=epochs, seed=seed,
                                  device=str(next(net.parameters()).device))
    for name, fn in baselines.items():
        rows[f"baseline: {name}"] = detection_metrics(fn(test_normal), fn(test_anomalous))
    pixel = _pixel_rows(info, anomalous, masks, anomalous_files, train, test_normal, test_anomalous, maps_n, maps_a) \
        if want_maps else None
    return {"model": str(model), **described, **({"pixel_rows": pixel} if pixel else {}), "normal_images": len(test_normal),
            "anomalous_images": len(test_anomalous), "training_images": len(train), "samples": samples,
            "seed": seed, "baseline_epochs": epochs, "rows": rows}


def _pixel_rows(info, anomalous, masks, files, train, normal, abnormal, maps_n, maps_a) -> dict:
    """Pixel metrics of the model's maps and of the two pixel baselines, normal images' pixels as negatives."""
    import torch

    from medvae.anomaly.metrics import pixel_metrics

    truth = torch.cat([torch.zeros_like(normal[:, :1]), _masks_for(info, anomalous, masks, files)])
    images = torch.cat([normal, abnormal])
    mean, std = train.mean(0, keepdim=True), train.std(0, keepdim=True)
    maps = {"model map (-log p(x|z) per pixel)": torch.cat([maps_n, maps_a])[:, :1],
            "baseline: intensity": images[:, :1],
            "baseline: voxel z-score": ((images - mean).abs() / (std + 0.02))[:, :1]}
    return {name: pixel_metrics(m.numpy(), truth.numpy()) for name, m in maps.items()}


def _masks_for(info, anomalous, masks, files):
    """The masks of the anomalous images ``files`` (the same relative names under ``masks``), on the model's grid."""
    import torch

    from medvae.data.transforms import prepare
    from medvae.io.images import read_image

    size = info.preprocessing.get("size")
    out = []
    for f in files:
        path = Path(masks) / Path(os.path.abspath(f)).relative_to(os.path.abspath(anomalous))
        if not path.exists():
            raise UsageError(f"masks {masks}: no mask for {f} (looked for {path})", param="masks")
        mask = read_image(path)
        binary = mask.with_array((mask.array > 0).astype("float32"))
        out.append((prepare(binary, size, normalize="none").tensor.as_tensor() > 0.5).float())
    return torch.stack(out)


def _mnist(info, digit, limit):
    from medvae.tasks.generative.train import mnist_images

    if digit is None or digit not in range(10):
        raise UsageError(f"anomaly_digit must be a digit 0-9 with --data mnist, got {digit}", param="anomaly_digit")
    trained = (info.training or {}).get("digits")
    if trained is not None and digit in trained:
        raise UsageError(f"anomaly_digit {digit}: the model was trained on it (its digits: {trained}); train "
                         f"without it: medvae train vae --data mnist --digits "
                         f"{','.join(str(d) for d in range(10) if d != digit)}", param="anomaly_digit")
    size = (info.preprocessing.get("size") or [28])[0]
    others = [d for d in range(10) if d != digit]
    train = mnist_images("train", size, others)
    images, labels = mnist_images("test", size, labels=True)
    normal, anomalous = images[labels != digit], images[labels == digit]
    cut = (lambda t: t[:limit]) if limit else (lambda t: t)
    note = "" if trained is not None else " (the model file does not say which digits it was trained on)"
    return cut(train), cut(normal), cut(anomalous), {"data": f"mnist, anomaly digit {digit}{note}"}


def _folders(info, normal, anomalous, fit, limit):
    from medvae.data.datasets import load_image_folder
    from medvae.data.intensity import trained_normalize

    size = info.preprocessing.get("size")
    if not size:
        raise UsageError(f"model {info.path}: the model file does not record its image size", param="model")
    dims = int(info.preprocessing.get("spatial_dims", len(size)))
    normalize = trained_normalize(info.preprocessing)
    fit = fit or (info.training or {}).get("data")
    if not fit or not Path(fit).is_dir():
        raise UsageError(f"fit: the baselines need the normal training images; pass --fit DIR (the model was "
                         f"trained on {fit or 'an unknown folder'})", param="fit")

    def load(folder, exclude=()):
        got = load_image_folder(folder, size, dims, normalize=normalize, limit=limit, progress=False)
        keep = [i for i, f in enumerate(got.files) if str(Path(f).resolve()) not in exclude]
        return got.images[keep], [got.files[i] for i in keep]

    held_out = set((info.training or {}).get("val_files") or [])
    abnormal, abnormal_files = load(anomalous)
    return (load(fit, held_out)[0], load(normal)[0], abnormal,
            {"data": f"normal {normal}, anomalous {anomalous}, baselines fitted on {fit}"}, abnormal_files)


def format_anomaly(result: dict) -> str:
    """The report as a Markdown table."""
    lines = [f"{result['data']}: {result['normal_images']} normal, {result['anomalous_images']} anomalous images; "
             f"{result['samples']} latent samples; baselines fitted on {result['training_images']} normal training "
             "images; higher score = more anomalous", "",
             "| score | AUROC | AUPRC (prevalence) | TPR at 5 % FPR |", "|---|---:|---:|---:|"]
    for name, m in result["rows"].items():
        lines.append(f"| {name} | {m['auroc']:.3f} | {m['auprc']:.3f} ({m['prevalence']:.3f}) | "
                     f"{m['tpr_at_5pct_fpr']:.3f} |")
    for name, m in result["rows"].items():
        if m.get("non_finite"):
            lines.append(f"note: {name}: {m['non_finite']} images scored infinite or NaN (an input so far from "
                         "normal that its score overflowed), ranked as the most anomalous")
    if result.get("pixel_rows"):
        lines += ["", "| pixel score | pixel AUROC | pixel AUPRC (prevalence) | ⌈Dice⌉ |", "|---|---:|---:|---:|"]
        for name, m in result["pixel_rows"].items():
            lines.append(f"| {name} | {m['auroc']:.3f} | {m['auprc']:.3f} ({m['prevalence']:.4f}) | "
                         f"{m['best_dice']:.3f} |")
    return "\n".join(lines)
