from __future__ import annotations

import numpy as np
import pytest
import torch

from medvae.data.mnist import MNIST_FILES, write_idx


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def mnist_dir(tmp_path):
    """A tiny MNIST folder in the standard layout: 64 train and 32 test random 28x28 'digits'."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    for split, n in (("train", 64), ("test", 32)):
        images = (rng.random((n, 28, 28)) > 0.7).astype(np.uint8) * 255
        write_idx(folder / MNIST_FILES[f"{split}_images"][0], images)
        write_idx(folder / MNIST_FILES[f"{split}_labels"][0], rng.integers(0, 10, n).astype(np.uint8))
    return folder


@pytest.fixture
def image_batch():
    """Eight 28x28 images in [0, 1] with some structure, ``(8, 1, 28, 28)``."""
    g = torch.Generator().manual_seed(1)
    return (torch.rand(8, 1, 28, 28, generator=g) > 0.6).float()


SAMPLE = __import__("pathlib").Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="session")
def sample_dir():
    """The repository's sample_data/ folder (small real DICOM, NIfTI and PNG files)."""
    return SAMPLE


@pytest.fixture(scope="session")
def dicom_data():
    """The folder of real DICOM files that the pydicom-data package installs (a test dependency)."""
    import os

    import data_store

    return __import__("pathlib").Path(os.path.dirname(data_store.__file__)) / "data"
