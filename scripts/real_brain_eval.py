"""Score synthesis models trained with ``holdout="slabs"`` on their held-out axial slabs, beside the baselines,
and compare the model's predictive spread inside the tumour with normal brain.

    python scripts/real_brain_eval.py DATA MODEL [MODEL ...] --out results.json [--figure real_brain.png]

``MODEL`` files come from ``train_synthesis(..., holdout="slabs")``: VAE-GANs (``model="vaegan"``) and L1 U-Nets
(``model="unet"``), grouped by their sources and target. For each group and each subject of ``DATA`` the models
trained on, on the subject's own grid and in the target's own units:

* **held-out voxels**: brain (any source non-zero) inside the held-out slabs the model file records
  (:func:`medvae.data.slabs.heldout_voxels`); nothing of the training slabs or the gaps is scored;
* **model**: the mean of ``--samples`` draws of the VAE-GAN
  (:func:`~medvae.tasks.synthesis.synthesize.synthesize_subject`), its total std the predictive std
  (:func:`medvae.models.synthesis.predictive_moments`: spread of the draws plus the predicted Laplace noise),
  also split into those two parts (``std_of_draws``, ``std_of_noise``);
* **L1 U-Net**: the ``model="unet"`` file of the same sources and target;
* **linear**: ``target ≈ a + Σ b_i source_i`` (``evaluate.fit_linear``) fitted on the brain voxels of the
  training slabs only;
* PSNR, SSIM, MAE from :func:`medvae.metrics.masked_image_metrics` (as ``medvae evaluate synthesis`` calls it:
  whole volumes and the mask, here the held-out brain);
* the same metrics on the training slabs (``on_training_slabs``), only to show how much better each method
  fits what it trained on than what it predicts;
* **tumour**: FLAIR z-scored over the brain, above ``--threshold`` (2.5), its largest 26-connected component,
  at the held-out voxels; **normal brain**: the held-out brain more than ``--margin`` (3) voxels from that
  component. Mean predictive std and MAE in each, and their ratio.

``--figure`` draws, for each VAE-GAN, the held-out axial slice with the most tumour: sources, truth, synthesis,
|error| and total std, the tumour outlined.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def tumour_outline(flair: np.ndarray, brain: np.ndarray, threshold: float = 2.5) -> np.ndarray:
    """The largest 26-connected component of FLAIR z-scored over ``brain`` above ``threshold`` (boolean)."""
    from scipy import ndimage

    values = np.asarray(flair, np.float64)[brain]
    z = np.zeros(flair.shape)
    z[brain] = (values - values.mean()) / values.std()
    labels, n = ndimage.label(brain & (z > threshold), structure=np.ones((3, 3, 3)))
    if not n:
        return np.zeros(flair.shape, bool)
    sizes = ndimage.sum(np.ones(flair.shape), labels, range(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def _load(paths):
    from medvae.checkpoint import load_model_of_kind

    groups: dict[tuple, dict] = {}
    for path in paths:
        model, info = load_model_of_kind(path, "synthesis")
        if info.training.get("holdout") != "slabs":
            raise SystemExit(f"error: {path}: not trained with holdout slabs (holdout "
                             f"{info.training.get('holdout', 'subjects')!r}); use medvae evaluate synthesis")
        pre = info.preprocessing
        key = (tuple(pre["sources"]), pre["target"])
        kind = "model" if model.config.latent_channels or model.config.gan else "l1_unet"
        if kind in groups.setdefault(key, {}):
            raise SystemExit(f"error: two {kind} files for {'+'.join(key[0])} → {key[1]}")
        groups[key][kind] = (Path(path), model, info)
    return groups


def evaluate(data, model_paths, samples: int = 16, seed: int = 0, threshold: float = 2.5, margin: int = 3,
             keep: bool = False) -> dict:
    """The results as a dict (see the module doc); ``keep`` also returns the volumes for the figure."""
    import torch
    from scipy import ndimage

    from medvae.data.paired import brain_mask, find_subjects, read_subject_folder
    from medvae.data.slabs import heldout_voxels
    from medvae.io.image import Image
    from medvae.metrics import masked_image_metrics, spearman
    from medvae.tasks.synthesis.evaluate import apply_linear, fit_linear
    from medvae.tasks.synthesis.synthesize import synthesize_subject

    torch.manual_seed(seed)
    results, volumes = [], []
    for (sources, target), group in _load(model_paths).items():
        sources = list(sources)
        _, _, info = group.get("model") or group["l1_unet"]
        slabs = info.training["heldout_slabs"]
        for subject in find_subjects(data, [*sources, target]):
            folder = str(subject.folder.resolve())
            if folder not in slabs:
                continue
            images = read_subject_folder(subject.folder, [*sources, target], ("mask", "flair"))
            ref = images[sources[0]]
            brain = brain_mask(images, sources)
            held = brain & heldout_voxels(info.training, subject.folder, ref)
            train = brain & heldout_voxels(info.training, subject.folder, ref, part="train")
            for _, _, other in group.values():  # every model of the group must share the split
                if other.training["heldout_slabs"].get(folder) != slabs[folder]:
                    raise SystemExit(f"error: the models of {'+'.join(sources)} → {target} hold out other slabs")
            truth = np.asarray(images[target].array, np.float64)
            fit = dict(images)
            fit["mask"] = Image(train.astype(np.float32), ref.affine)
            coef = fit_linear([fit], sources, target)
            preds = {"linear": apply_linear(coef, images, sources)}
            std = None
            if "l1_unet" in group:
                _, unet, unet_info = group["l1_unet"]
                preds["l1_unet"] = synthesize_subject(unet, unet_info, images, 1, seed).mean
            if "model" in group:
                _, model, model_info = group["model"]
                result = synthesize_subject(model, model_info, images, samples, seed)
                preds["model"] = result.mean
                std = result.std
                # the two parts of the total std: the draws' spread, and the predicted noise that makes the rest
                spread = result.model_std
                noise = np.sqrt(np.clip(result.std.astype(np.float64) ** 2 - spread.astype(np.float64) ** 2, 0, None))
            tumour = (tumour_outline(images["flair"].array, brain, threshold) if "flair" in images
                      else np.zeros(brain.shape, bool))
            normal = held & ~ndimage.binary_dilation(tumour, np.ones((3, 3, 3)), iterations=margin)
            tumour_held = tumour & held
            row = {"sources": sources, "target": target, "subject": subject.name,
                   "models": {k: v[0].name for k, v in group.items()},
                   "heldout_slices_mm": slabs[folder]["heldout_mm"],
                   "heldout_brain_voxels": int(held.sum()), "train_brain_voxels": int(train.sum()),
                   "tumour_voxels": int(tumour.sum()), "tumour_voxels_heldout": int(tumour_held.sum()),
                   "tumour_voxels_train": int((tumour & train).sum()),
                   "normal_voxels_heldout": int(normal.sum()),
                   "linear_coefficients": [float(c) for c in coef]}
            for name, pred in preds.items():
                row[name] = masked_image_metrics(pred, truth, held)
                err = np.abs(pred - truth)
                row[name]["mae_tumour"] = float(err[tumour_held].mean()) if tumour_held.any() else None
                row[name]["mae_normal"] = float(err[normal].mean())
                row[name]["on_training_slabs"] = masked_image_metrics(pred, truth, train)  # for contrast only
            if std is not None:
                err = np.abs(preds["model"] - truth)
                row["std"] = {"mean_heldout": float(std[held].mean()), "mean_normal": float(std[normal].mean()),
                              "mean_tumour": float(std[tumour_held].mean()) if tumour_held.any() else None,
                              "spearman_std_abs_error": spearman(std[held], err[held])}
                if tumour_held.any():
                    row["std"]["tumour_over_normal"] = row["std"]["mean_tumour"] / row["std"]["mean_normal"]
                    row["std"]["higher_in_tumour"] = row["std"]["mean_tumour"] > row["std"]["mean_normal"]
                for name, part in (("std_of_draws", spread), ("std_of_noise", noise)):
                    row[name] = {"mean_heldout": float(part[held].mean()), "mean_normal": float(part[normal].mean()),
                                 "mean_tumour": float(part[tumour_held].mean()) if tumour_held.any() else None}
            results.append(row)
            if keep:
                volumes.append({"row": row, "images": images, "sources": sources, "target": target, "held": held,
                                "tumour": tumour, "preds": preds, "std": std, "truth": truth})
    if not results:
        raise SystemExit(f"error: {data}: no subject here was split into slabs by these models")
    out = {"data": str(data), "samples": samples, "seed": seed, "tumour_threshold": threshold,
           "normal_margin_voxels": margin, "results": results}
    return (out, volumes) if keep else out


def _ras(a: np.ndarray, affine: np.ndarray) -> np.ndarray:
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    return nib.orientations.apply_orientation(a, ornt)


def figure(volumes: list[dict], path: Path) -> None:
    """One row per VAE-GAN: the held-out axial slice with the most tumour (see the module doc)."""
    from medvae.viz import _plt, _save

    rows = [v for v in volumes if v["std"] is not None]
    if not rows:
        raise SystemExit("error: --figure needs a VAE-GAN model")
    plt = _plt()
    ncols = max(len(v["sources"]) for v in rows) + 4
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.4 * ncols, 3.2 * len(rows)), squeeze=False)
    for r, v in enumerate(rows):
        affine = v["images"][v["sources"][0]].affine
        ras = {k: _ras(np.asarray(a, np.float64), affine) for k, a in
               [("held", v["held"]), ("tumour", v["tumour"] & v["held"]), ("truth", v["truth"]),
                ("pred", v["preds"]["model"]), ("std", v["std"])]}
        brain_ras = ras["held"] > 0
        counts = (ras["tumour"] > 0).sum(axis=(0, 1))
        z = int(np.argmax(counts)) if counts.any() else int(np.argmax(brain_ras.sum(axis=(0, 1))))
        xs, ys = (np.flatnonzero(brain_ras[..., z].any(axis=a)) for a in (1, 0))
        crop = (slice(max(0, xs[0] - 4), xs[-1] + 5), slice(max(0, ys[0] - 4), ys[-1] + 5), z)

        def view(a):  # rows anterior at the top, the patient's left on the left (neurological view)
            return np.swapaxes(a[crop], 0, 1)[::-1]

        def show(ax, a, title, cmap="gray", vmin=None, vmax=None):
            ax.imshow(view(a), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()

        for c, s in enumerate(v["sources"]):
            a = _ras(np.asarray(v["images"][s].array, np.float64), affine)
            show(axes[r, c], a, f"{s} (source)", vmin=0, vmax=np.percentile(a[brain_ras], 99.5))
        for c in range(len(v["sources"]), ncols - 4):
            axes[r, c].set_axis_off()
        hi = np.percentile(ras["truth"][brain_ras], 99.5)
        err = np.abs(ras["pred"] - ras["truth"]) * brain_ras
        show(axes[r, -4], ras["truth"], f"{v['target']} (truth)", vmin=0, vmax=hi)
        show(axes[r, -3], ras["pred"] * brain_ras, f"synthesis ({'+'.join(v['sources'])}→{v['target']})", vmin=0,
             vmax=hi)
        show(axes[r, -2], err, "|error|", cmap="magma", vmin=0, vmax=0.5 * hi)
        show(axes[r, -1], ras["std"] * brain_ras, "total std", cmap="magma", vmin=0,
             vmax=np.percentile(ras["std"][brain_ras], 99.5))
        for ax in axes[r, -4:]:
            ax.contour(view(ras["tumour"]), levels=[0.5], colors="c", linewidths=0.6)
        m = v["row"]
        axes[r, 0].text(0, -0.08, f"held-out slabs: PSNR {m['model']['psnr']:.1f} dB, SSIM {m['model']['ssim']:.3f}; "
                        f"std tumour/normal {m['std'].get('tumour_over_normal', float('nan')):.2f}",
                        transform=axes[r, 0].transAxes, fontsize=7, va="top")
    fig.suptitle("TCGA-DU-7294 (TCIA TCGA-LGG, CC BY 3.0): a held-out axial slab through the tumour "
                 "(cyan: FLAIR z > 2.5)", fontsize=9)
    _save(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the folder of subject folders the models trained on")
    parser.add_argument("models", type=Path, nargs="+", help="model files (VAE-GAN and L1 U-Net)")
    parser.add_argument("--out", type=Path, required=True, help="the results as JSON")
    parser.add_argument("--figure", type=Path, default=None, help="also draw this PNG")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=2.5, help="FLAIR z-score of the tumour outline")
    parser.add_argument("--margin", type=int, default=3, help="voxels between tumour and normal brain")
    args = parser.parse_args()
    out, volumes = evaluate(args.data, args.models, args.samples, args.seed, args.threshold, args.margin, keep=True)
    out["command"] = "python scripts/real_brain_eval.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    for row in out["results"]:
        line = f"{'+'.join(row['sources'])} → {row['target']} ({row['subject']}, held-out slabs):"
        for name in ("model", "l1_unet", "linear"):
            if name in row:
                line += f"  {name} PSNR {row[name]['psnr']:.2f} SSIM {row[name]['ssim']:.4f}"
        if "std" in row and row["std"]["mean_tumour"] is not None:
            line += (f"  std tumour {row['std']['mean_tumour']:.1f} normal {row['std']['mean_normal']:.1f} "
                     f"ratio {row['std']['tumour_over_normal']:.2f}")
        print(line)
    if args.figure:
        figure(volumes, args.figure)
        print(f"wrote {args.out}, {args.figure}")
    else:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
