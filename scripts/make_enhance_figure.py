"""Make docs/figures/enhance_example.png: real chest films of held-out patients, degraded, enhanced by the
shipped model and by the best tuned classical baseline; and lung masks on held-out patients' films.

    python scripts/make_enhance_figure.py --films DIR [--films DIR ...] --segmenter FOLD_MODEL --lungs DIR
        [--enhancer MODEL] [--out docs/figures/enhance_example.png]

Row 1-2: a film from ``--films`` the enhancer did not train on (the first by name), degraded by noise 0.9 and
grid 0.6, then enhanced and restored by each classical baseline with the parameter ``medvae evaluate enhance``
tunes on training films; the best of those is shown. Row 3: films of ``--lungs`` (images/ and masks/) that the
cross-validation model ``--segmenter`` held out, segmented after ``--enhance``, the true outline in green.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", action="append", required=True, help="clean chest films (a folder)")
    parser.add_argument("--segmenter", type=Path, required=True, help="a fold model of train segment --folds")
    parser.add_argument("--lungs", type=Path, required=True, help="the lung set (images/ and masks/)")
    parser.add_argument("--enhancer", type=Path, default=None, help="default: the shipped enhancer")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/enhance_example.png"))
    args = parser.parse_args()
    try:
        import matplotlib
        import numpy as np
    except ImportError as e:  # before touching any file
        print(f"error: needs matplotlib and numpy ({e})", file=sys.stderr)
        return 2

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medvae.checkpoint import load_model_of_kind
    from medvae.data.intensity import to_unit
    from medvae.data.lung_datasets import load_lung_mask, lung_pairs, read_lung_image
    from medvae.phantoms.degrade import degrade
    from medvae.tasks.cxr.enhance import enhance_values
    from medvae.tasks.cxr.evaluate_enhance import classical, eval_images, quality, tune_baselines
    from medvae.tasks.cxr.segment import lung_labels, predict_lungs
    from medvae.tasks.cxr.train_enhance import read_unit

    enhancer, info = load_model_of_kind(args.enhancer, "enhancer")
    segmenter, seg_info = load_model_of_kind(args.segmenter, "segmenter")
    tests, training = eval_images(info, args.films)
    clean = read_unit(sorted(tests, key=lambda p: p.name)[0])
    conditions = (("noise", 0.9), ("grid", 0.6))
    tuning = [read_unit(p) for p in sorted(training, key=lambda p: p.name)[:4]]
    params = tune_baselines(tuning, [k for k, _ in conditions], [0.6, 0.9], seed=0)
    fig, axes = plt.subplots(3, 4, figsize=(13, 10))
    for row, (kind, severity) in enumerate(conditions):
        degraded = degrade(clean, kind, severity, np.random.default_rng(row))
        enhanced = enhance_values(enhancer, degraded)
        restored = classical(degraded, params[(kind, severity)])
        best = max(restored, key=lambda m: quality(restored[m], clean)[0])
        panels = [("clean (held-out patient)", clean), (f"{kind} {severity}", degraded),
                  ("medvae enhance", enhanced), (f"best tuned classical: {best}", restored[best])]
        for ax, (title, image) in zip(axes[row], panels):
            psnr = "" if image is clean else f"\n{quality(image, clean)[0]:.1f} dB"
            ax.imshow(image.T, cmap="gray", vmin=0, vmax=1)
            ax.set_title(title + psnr, fontsize=10)
    held = set(seg_info.training.get("test_images", []))
    pairs = [p for p in lung_pairs(args.lungs / "images", args.lungs / "masks") if p.image.name in held][:4]
    for ax, pair in zip(axes[2], pairs):
        image = read_lung_image(pair.image)
        unit = to_unit(image.plane())[0]
        unit = to_unit(enhance_values(enhancer, unit))[0]
        labels = lung_labels(predict_lungs(segmenter, seg_info, unit))
        truth = load_lung_mask(pair, unit.shape)
        overlay = np.repeat(unit.T[..., None], 3, axis=2)
        for value, colour in ((1, (0.16, 0.47, 1.0)), (2, (1.0, 0.59, 0.16))):
            overlay[labels.T == value] = 0.6 * overlay[labels.T == value] + 0.4 * np.array(colour)
        ax.imshow(overlay)
        ax.contour((truth > 0).T, levels=[0.5], colors="lime", linewidths=0.8)
        dice = 2 * ((labels > 0) & (truth > 0)).sum() / ((labels > 0).sum() + (truth > 0).sum())
        ax.set_title(f"held-out patient, Dice {dice:.3f}\n(green: human outline)", fontsize=10)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
