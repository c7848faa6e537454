"""Rare-class oversampling on MNIST: the class-conditional VAE-GAN beside class weights, a tuned threshold,
random oversampling, SMOTE (pixels, VAE latent) and VAE posterior sampling, in one process.

    python benchmarks/oversampling.py [--counts 4,20,40] [--seeds 5] [--minority 8] [--json out.json]
    python benchmarks/oversampling.py --data table.csv --minority NAME [--counts 0]   # a labelled folder/CSV
    python benchmarks/oversampling.py --cxr ../shared/data/nih-cxr14 [--finding Cardiomegaly] [--seeds 5]

Per minority count (4, 20, 40 training images of the minority digit against 400 of each other digit:
imbalance 100, 20, 10) this runs ``medvae evaluate oversampling`` (``medvae.tasks.oversampling.evaluate``):
per seed the splits are made first, then every sampler draws from the training split only, and one small CNN is
trained per row. Prints each table (mean ± sd over seeds) and the verdict: whether a conditional VAE-GAN row
beats every other row on minority AUPRC and macro-F1 by a one-sided paired t-test (p < 0.05). ``--counts 0``
keeps the data's own minority count. Settings are the command's defaults, not tuned on the test split.

``--cxr DIR`` (NIH ChestX-ray14 films with ``index.csv``: image, finding_labels, patient_id): the films whose
only label is "No Finding" against those with ``--finding`` (alone or with others), at 64², split by patient
(30 % of the patients for testing, 15 % for validation), the finding's own count kept.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path


def finding_table(folder: str, finding: str) -> str:
    """A CSV (file, label) of the films labelled only "No Finding" and those with ``finding``, in a temporary
    folder (absolute paths)."""
    root = Path(folder).resolve()
    rows = []
    with open(root / "index.csv", newline="") as f:
        for row in csv.DictReader(f):
            labels = row["finding_labels"].split("|")
            label = finding if finding in labels else "No Finding" if labels == ["No Finding"] else None
            if label:
                rows.append([str(root / row["image"]), label])
    table = Path(tempfile.mkdtemp()) / "films.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([["file", "label"], *rows])
    return str(table)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--minority", default="8")
    parser.add_argument("--counts", default="4,20,40", help="minority training images per table (0: all)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--json", default=None, help="write every seed's metrics here")
    parser.add_argument("--cxr", default=None, help="NIH ChestX-ray14 folder with index.csv")
    parser.add_argument("--finding", default="Cardiomegaly")
    args = parser.parse_args(argv)
    patients = None
    if args.cxr:
        args.data, patients = finding_table(args.cxr, args.finding), str(Path(args.cxr) / "index.csv")
        args.minority, args.counts, args.size = args.finding, "0", 64

    import torch

    from medvae.tasks.oversampling.evaluate import evaluate_oversampling, format_report, verdict

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; data {args.data}, minority {args.minority}")
    everything = {}
    for count in (int(c) for c in args.counts.split(",")):
        start = time.perf_counter()
        report = evaluate_oversampling(data=args.data, minority=args.minority, minority_count=count or None,
                                       seeds=args.seeds, size=args.size, patients=patients, progress=False)
        print(f"\n## minority count {count or 'all'} ({time.perf_counter() - start:.0f} s)\n")
        print(format_report(report), flush=True)
        everything[str(count)] = {"counts": report.counts, "results": report.results,
                                  "met": verdict(report)[0]}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(everything, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
