"""Missing-modality synthesis beside its baselines: T1 (+ others) → CBF on the brain phantoms.

    python benchmarks/synthesis.py [--subjects 16] [--epochs 12] [--source t1] [--target cbf] [--seed 0]
                                   [--device auto] [--out DIR]

Makes ``--subjects`` brain phantoms (``medvae phantom brain``), trains the conditional VAE-GAN
(``medvae train synthesis``; a quarter of the subjects held out, whole subjects) and runs
``medvae evaluate synthesis`` on the held-out subjects, which trains the same-size L1 U-Net with the same
subjects, epochs and seed and fits the linear regression on the training subjects. Prints the table, the
issue's checks (the VAE-GAN beats the linear baseline on PSNR, SSIM and MAE and the L1 U-Net on SSIM; the
spread ranks the errors with Spearman > 0.3) and the wall time of each step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--source", action="append", default=None, help="source modality (repeat; default t1)")
    parser.add_argument("--target", default="cbf")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lr", type=float, default=None, help="default: medvae's")
    parser.add_argument("--adv-weight", type=float, default=None, help="default: medvae's")
    parser.add_argument("--beta", type=float, default=None, help="default: medvae's")
    parser.add_argument("--latent-channels", type=int, default=None, help="default: medvae's")
    parser.add_argument("--out", type=Path, default=None, help="keep data and models here (default: a temp folder)")
    parser.add_argument("--tag", default="", help="suffix of the model files (to keep several in --out)")
    parser.add_argument("--figure", type=Path, default=None, help="write a figure of one held-out subject here")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()

    from medvae.phantoms.brain import write_brain_phantoms
    from medvae.tasks.synthesis.evaluate import evaluate_synthesis, format_report
    from medvae.tasks.synthesis.train import train_synthesis

    folder = args.out or Path(tempfile.mkdtemp(prefix="medvae-synthesis-"))
    sources = tuple(args.source or ["t1"])
    times = {}
    started = time.perf_counter()
    data = folder / "phantoms"
    if not data.is_dir():
        write_brain_phantoms(args.subjects, data, seed=args.seed)
    times["phantoms"] = time.perf_counter() - started
    model = folder / f"{'+'.join(sources)}-{args.target}{args.tag}.safetensors"
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        overrides = {k: getattr(args, k) for k in ("lr", "adv_weight", "beta", "latent_channels")
                     if getattr(args, k) is not None}
        train = train_synthesis(data=str(data), sources=sources, target=args.target, out=model, epochs=args.epochs,
                                seed=args.seed, device=args.device, progress=False, **overrides)
    times["train VAE-GAN"] = time.perf_counter() - started
    started = time.perf_counter()
    result = evaluate_synthesis(model, data, samples=args.samples, seed=args.seed, device=args.device,
                                progress=False)
    times["evaluate (incl. training the L1 U-Net)"] = time.perf_counter() - started
    print(format_report(result))
    print()
    print(f"data: {args.subjects} phantom subjects (seed {args.seed}); trained on {len(train.train_subjects)} "
          f"({train.n_train} slices), held out {', '.join(train.test_subjects)}; {args.epochs} epochs; "
          f"device {train.record['device']}")
    for step, seconds in times.items():
        print(f"{step}: {seconds:.0f} s")
    if args.figure:
        figure(model, data / train.test_subjects[0], args.target, sources, args.samples, args.seed, args.figure)
    if args.json:
        args.json.write_text(json.dumps({**result, "times": times, "train": train.record}, indent=2))


def figure(model_path: Path, subject: Path, target: str, sources, samples: int, seed: int, path: Path) -> None:
    """Axial slice of a held-out subject: sources, measured and true target, synthesis, error, uncertainty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from medvae.data.paired import read_subject_folder
    from medvae.checkpoint import load_model_of_kind
    from medvae.tasks.synthesis.synthesize import synthesize_subject

    model, info = load_model_of_kind(model_path, "synthesis", option="model")
    images = read_subject_folder(subject, [*sources, target], ("mask", f"{target}_truth"))
    result = synthesize_subject(model, info, images, samples, seed)
    z = images[sources[0]].array.shape[2] // 2 + 5
    panels = [(images[s].array, s.upper(), "gray", None) for s in sources]
    panels += [(images[target].array, f"measured {target}", "magma", (0, 90)),
               (images.get(f"{target}_truth", images[target]).array, f"true {target}", "magma", (0, 90)),
               (result.mean, f"synthesised (mean of {samples})", "magma", (0, 90)),
               (np.abs(result.mean - images[target].array), "|error| vs measured", "viridis", (0, 20)),
               (result.std, "predicted std", "viridis", (0, 20))]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.8))
    for ax, (array, title, cmap, lim) in zip(axes, panels):
        ax.imshow(np.rot90(array[:, :, z]), cmap=cmap, vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{subject.name} (held out), axial slice {z}; CBF in ml/100 g/min", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
