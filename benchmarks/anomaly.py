"""Anomaly detection on MNIST with a held-out digit (An & Cho's protocol), medvae's scores beside the baselines.

    python benchmarks/anomaly.py [--digits 0,1,...,9] [--seeds 0,1] [--epochs 20] [--likelihood gaussian-learned]
    python benchmarks/anomaly.py --cxr ../shared/data/nih-cxr14 [--seeds 0] [--epochs 30]
    python benchmarks/anomaly.py --lesions [--seeds 0] [--epochs 30]

For each digit D and seed: ``medvae train vae --data mnist --digits <the other nine>`` on the embedded 5,000-digit
sample's training split (its own 10 % validation images are the stored normals), then
``medvae evaluate anomaly --data mnist --anomaly-digit D`` on the test split, which fits and runs, in the same
process, PCA reconstruction error, 5-NN distance, a plain autoencoder of the same architecture (the same epochs)
and the distance to the mean image. Prints the AUROC per digit, the mean per seed, and whether medvae's best score
beats PCA and the autoencoder on every seed and matches 5-NN on the mean. The model settings are fixed here
(not tuned on the test digits).

``--cxr DIR`` (NIH ChestX-ray14 films with ``index.csv``: image, finding_labels, patient_id): per seed, 30 % of the
patients are held out; a VAE is trained (``CXR_MODEL``, 64²) on the "No Finding" films of the others, and
``evaluate anomaly`` compares the held-out patients' "No Finding" films with their films with any finding, the
baselines fitted on the same training films.

``--lesions``: pixel maps on brain phantoms. ``medvae phantom brain`` makes 16 healthy subjects to train a 3-D VAE
on their FLAIR (``LESION_MODEL``), 4 other healthy subjects and 6 with ``--lesions`` (MS-like, a tumour with oedema,
T1-only lesions) to test; ``evaluate anomaly --masks`` reports pixel AUROC, AUPRC and ⌈Dice⌉ of the model's map
beside FLAIR thresholding (the intensity itself) and a voxel-wise z-score against the healthy training subjects.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

MODEL = dict(size=28, channels=(32, 64), latent_dim=8, batch_size=64, lr=1e-3)
CXR_MODEL = dict(size=64, channels=(32, 64, 128), latent_dim=32, batch_size=32, lr=1e-3)
LESION_MODEL = dict(size=64, spatial_dims=3, channels=(16, 32, 64), latent_dim=64, batch_size=4, lr=1e-3)
SCORES = ("recon_prob", "neg_elbo", "iwae", "recon_error")
BASELINES = ("baseline: pca", "baseline: knn", "baseline: autoencoder", "baseline: mean_distance")


def run(digit: int, seed: int, epochs: int, likelihood: str, folder: Path) -> dict:
    from medvae.tasks.anomaly.evaluate import evaluate_anomaly
    from medvae.tasks.generative.train import train_generative

    out = folder / f"vae_d{digit}_s{seed}.safetensors"
    train_generative(kind="vae", data="mnist", out=out, digits=tuple(d for d in range(10) if d != digit),
                     likelihood=likelihood, epochs=epochs, seed=seed, progress=False, device="cpu", overwrite=True,
                     **{k: v for k, v in MODEL.items()})
    return evaluate_anomaly(out, data="mnist", anomaly_digit=digit, seed=seed, device="cpu")


def run_cxr(data: Path, seed: int, epochs: int, likelihood: str, folder: Path) -> dict:
    """Train on the "No Finding" films of 70 % of the patients; test on the others' normal vs abnormal films."""
    import csv

    import numpy as np

    from medvae.tasks.anomaly.evaluate import evaluate_anomaly
    from medvae.tasks.generative.train import train_generative

    with open(data / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    patients = sorted({r["patient_id"] for r in rows})
    rng = np.random.default_rng(seed)
    held_out = set(rng.permutation(patients)[: round(0.3 * len(patients))])
    groups = {"train": [], "normal": [], "anomalous": []}
    for r in rows:
        normal = r["finding_labels"].strip() == "No Finding"
        if r["patient_id"] not in held_out:
            if normal:
                groups["train"].append(r["image"])
        else:
            groups["normal" if normal else "anomalous"].append(r["image"])
    for name, images in groups.items():
        (folder / name).mkdir()
        for image in images:
            (folder / name / Path(image).name).symlink_to((data / image).resolve())
    out = folder / f"cxr_s{seed}.safetensors"
    train_generative(kind="vae", data=str(folder / "train"), out=out, likelihood=likelihood, epochs=epochs,
                     seed=seed, progress=False, device="cpu", overwrite=True, **CXR_MODEL)
    result = evaluate_anomaly(out, normal=folder / "normal", anomalous=folder / "anomalous", fit=folder / "train",
                              seed=seed, device="cpu")
    result["groups"] = {k: len(v) for k, v in groups.items()}
    return result


def run_lesions(seed: int, epochs: int, likelihood: str, folder: Path) -> dict:
    """Healthy FLAIR phantoms to train; healthy and lesioned ones, with their lesion labels, to test."""
    from medvae.tasks.anomaly.evaluate import evaluate_anomaly
    from medvae.tasks.generative.train import train_generative
    from medvae.tasks.phantom import phantom_brain

    sets = {"train": (16, False, 3 * seed), "normal": (4, False, 3 * seed + 1), "anomalous": (6, True, 3 * seed + 2)}
    for name, (n, lesions, phantom_seed) in sets.items():
        subjects = phantom_brain(n, folder / f"phantoms_{name}", seed=1000 + phantom_seed, lesions=lesions,
                                 progress=False)
        (folder / name).mkdir()
        if lesions:
            (folder / "masks").mkdir()
        for subject in subjects:
            (folder / name / f"{subject.name}.nii.gz").symlink_to(subject / "flair.nii.gz")
            if lesions:
                (folder / "masks" / f"{subject.name}.nii.gz").symlink_to(subject / "lesion.nii.gz")
    out = folder / f"brain_s{seed}.safetensors"
    train_generative(kind="vae", data=str(folder / "train"), out=out, likelihood=likelihood, epochs=epochs,
                     seed=seed, progress=False, device="cpu", overwrite=True, **LESION_MODEL)
    return evaluate_anomaly(out, normal=folder / "normal", anomalous=folder / "anomalous", fit=folder / "train",
                            masks=folder / "masks", seed=seed, device="cpu")


def main_lesions(args) -> None:
    from medvae.tasks.anomaly.evaluate import format_anomaly

    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = run_lesions(seed, args.epochs, args.likelihood, Path(tmp))
        print(f"seed {seed} ({time.perf_counter() - start:.0f} s)")
        print(format_anomaly(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str))


def main_cxr(args) -> None:
    from medvae.tasks.anomaly.evaluate import format_anomaly

    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = run_cxr(args.cxr, seed, args.epochs, args.likelihood, Path(tmp))
        print(f"seed {seed}: {result['groups']} ({time.perf_counter() - start:.0f} s)")
        print(format_anomaly(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--likelihood", default="gaussian-learned")
    parser.add_argument("--json", type=Path, help="also write every result here")
    parser.add_argument("--cxr", type=Path, help="NIH ChestX-ray14 folder (images/, index.csv): the chest X-ray "
                                                 "benchmark instead of MNIST")
    parser.add_argument("--lesions", action="store_true", help="the brain-lesion phantom benchmark (pixel maps)")
    args = parser.parse_args()
    import importlib.util

    for package in ("sklearn", "torch"):
        if importlib.util.find_spec(package) is None:
            sys.exit(f"error: this benchmark needs {package} (pip install -e .)")
    if args.lesions:
        return main_lesions(args)
    if args.cxr is not None:
        if not (args.cxr / "index.csv").is_file():
            sys.exit(f"error: --cxr {args.cxr}: no index.csv there")
        return main_cxr(args)
    digits = [int(d) for d in args.digits.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for digit in digits:
                r = run(digit, seed, args.epochs, args.likelihood, Path(tmp))
                results[f"{seed}/{digit}"] = r["rows"]
                print(f"seed {seed} digit {digit}: " + ", ".join(
                    f"{k.replace('baseline: ', '')} {v['auroc']:.3f}" for k, v in r["rows"].items()), flush=True)
    names = SCORES + BASELINES
    print(f"\n{args.likelihood} decoder, {args.epochs} epochs, {len(digits)} digits x {len(seeds)} seeds "
          f"({time.perf_counter() - start:.0f} s)\n")
    print("| seed | " + " | ".join(n.replace("baseline: ", "") for n in names) + " |")
    print("|---:|" + "---:|" * len(names))
    means = {}
    for seed in seeds:
        means[seed] = {n: sum(results[f"{seed}/{d}"][n]["auroc"] for d in digits) / len(digits) for n in names}
        print(f"| {seed} | " + " | ".join(f"{means[seed][n]:.3f}" for n in names) + " |")
    overall = {n: sum(means[s][n] for s in seeds) / len(seeds) for n in names}
    print("| mean | " + " | ".join(f"{overall[n]:.3f}" for n in names) + " |")
    best = max(SCORES, key=lambda n: overall[n])
    beats = all(means[s][best] > max(means[s]["baseline: pca"], means[s]["baseline: autoencoder"]) for s in seeds)
    print(f"\nbest medvae score: {best} (mean AUROC {overall[best]:.3f})")
    print(f"{'PASS' if beats else 'MISS'}: {best} above PCA and the autoencoder on every seed"
          + "".join(f" (seed {s}: {means[s][best]:.3f} vs PCA {means[s]['baseline: pca']:.3f}, autoencoder "
                    f"{means[s]['baseline: autoencoder']:.3f})" for s in seeds))
    knn = overall["baseline: knn"]
    print(f"{'PASS' if overall[best] >= knn else 'MISS'}: {best} mean AUROC {overall[best]:.3f} vs 5-NN {knn:.3f}; "
          "target: at least 5-NN's")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
