"""Make docs/figures/enhance_example.png: a held-out chest phantom degraded, enhanced by the shipped model
and by the best classical baseline, and segmented.

    python scripts/make_enhance_figure.py [--out docs/figures/enhance_example.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures/enhance_example.png"))
    parser.add_argument("--index", type=int, default=0, help="phantom index (0 is cxr-0001, held out by both models)")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medvae.phantoms.cxr import cxr_phantom
    from medvae.phantoms.degrade import degrade
    from medvae.tasks.cxr.enhance import enhance_array
    from medvae.checkpoint import load_model_of_kind
    from medvae.tasks.cxr.evaluate_enhance import classical, quality
    from medvae.tasks.cxr.segment import lung_labels, predict_lungs

    enhancer, _ = load_model_of_kind(None, "enhancer")
    segmenter, info = load_model_of_kind(None, "segmenter")
    clean, truth = cxr_phantom(args.index, 512, seed=0)
    fig, axes = plt.subplots(2, 5, figsize=(15, 6.6))
    for row, (kind, severity) in enumerate((("noise", 0.9), ("grid", 0.6))):
        degraded = degrade(clean, kind, severity, np.random.default_rng(row))
        enhanced = enhance_array(enhancer, degraded)
        tv = classical(degraded)["tv"]
        labels = lung_labels(predict_lungs(segmenter, info, enhanced))
        panels = [("clean", clean), (f"{kind} {severity}", degraded), ("medvae enhance", enhanced),
                  ("TV denoising", tv)]
        for ax, (title, image) in zip(axes[row], panels):
            psnr = "" if image is clean else f"\n{quality(image, clean)[0]:.1f} dB"
            ax.imshow(image.T, cmap="gray", vmin=0, vmax=1)
            ax.set_title(title + psnr, fontsize=10)
        overlay = np.repeat(enhanced.T[..., None], 3, axis=2)
        overlay[labels.T == 1] = 0.6 * overlay[labels.T == 1] + 0.4 * np.array([0.16, 0.47, 1.0])
        overlay[labels.T == 2] = 0.6 * overlay[labels.T == 2] + 0.4 * np.array([1.0, 0.59, 0.16])
        axes[row, 4].imshow(overlay)
        axes[row, 4].contour((truth > 0).T, levels=[0.5], colors="lime", linewidths=0.6)
        axes[row, 4].set_title("lungs on the enhanced image\n(green: true outline)", fontsize=10)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)


if __name__ == "__main__":
    main()
