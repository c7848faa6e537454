import gzip
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medvae.data.mnist import (
    MNIST_FILES,
    download_mnist,
    load_mnist,
    read_idx,
    read_mnist_dir,
    sample_mnist_dir,
    write_idx,
)
from medvae.errors import InputError, UsageError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(
    array=st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, max_side=7), elements={"allow_nan": False}
                              if np.dtype(dt).kind == "f" else None)
    ),
    gz=st.booleans(),
)
def test_idx_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx" + (".gz" if gz else ""))
    write_idx(path, array)
    back = read_idx(path)
    assert back.shape == array.shape and back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "x.idx", np.zeros((2, 3, 4), np.uint8))
    raw = (tmp_path / "x.idx").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
    write_idx(tmp_path / "x.idx.gz", np.zeros((2, 3, 4), np.uint8))
    assert gzip.decompress((tmp_path / "x.idx.gz").read_bytes()) == raw


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"", "bad magic"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "bad magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x0a" + b"\x00" * 5, "truncated or corrupt"),
        (gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x0a" + b"\x00" * 10)[:-6], "cannot read"),
    ],
    ids=["empty", "magic", "header", "short-data", "bad-gzip"],
)
def test_corrupt_idx_gives_one_line_error_naming_the_file(tmp_path, payload, match):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(InputError, match=match) as e:
        read_idx(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_gzip_with_a_damaged_stream_names_the_file(tmp_path):
    payload = bytearray(gzip.compress(np.arange(4000, dtype=np.uint8).tobytes() * 3, mtime=0))
    payload[len(payload) // 2] ^= 0xFF  # flip a byte in the middle of the deflate stream
    path = tmp_path / "damaged-idx3-ubyte.gz"
    path.write_bytes(bytes(payload))
    with pytest.raises(InputError, match="cannot read IDX file") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_images_that_are_not_28x28(mnist_dir):
    write_idx(mnist_dir / MNIST_FILES["train_images"][0], np.zeros((64, 10, 10), np.uint8))
    with pytest.raises(InputError, match="train-images-idx3-ubyte.gz: images are 10x10; MNIST images are 28x28"):
        read_mnist_dir(mnist_dir)


def test_reads_standard_folder_gzipped_or_not(mnist_dir, tmp_path):
    data = read_mnist_dir(mnist_dir)
    assert data.train_images.shape == (64, 28, 28) and data.test_labels.shape == (32,)
    plain = tmp_path / "plain"
    plain.mkdir()
    for name, _ in MNIST_FILES.values():
        (plain / name.removesuffix(".gz")).write_bytes(gzip.decompress((mnist_dir / name).read_bytes()))
    np.testing.assert_array_equal(read_mnist_dir(plain).train_images, data.train_images)


def test_folder_errors(tmp_path, mnist_dir):
    with pytest.raises(UsageError, match="no such folder"):
        read_mnist_dir(tmp_path / "nope")
    with pytest.raises(UsageError, match="no MNIST IDX files"):
        read_mnist_dir(tmp_path)
    (mnist_dir / MNIST_FILES["test_labels"][0]).unlink()
    with pytest.raises(InputError, match="missing MNIST file.*t10k-labels"):
        read_mnist_dir(mnist_dir)


def test_label_count_mismatch(mnist_dir):
    write_idx(mnist_dir / MNIST_FILES["train_labels"][0], np.zeros(10, np.uint8))
    with pytest.raises(InputError, match="10 labels for 64 images"):
        read_mnist_dir(mnist_dir)


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_from_a_local_mirror_checks_checksums(mnist_dir, tmp_path):
    files = {k: (name, _md5(mnist_dir / name)) for k, (name, _) in MNIST_FILES.items()}
    dead = (tmp_path / "no-such-mirror").as_uri() + "/"
    target = download_mnist(tmp_path / "dl", mirrors=(dead, mnist_dir.as_uri() + "/"), files=files)
    np.testing.assert_array_equal(read_mnist_dir(target).train_images, read_mnist_dir(mnist_dir).train_images)
    # A second call finds the files good and fetches nothing (the mirror may be gone).
    download_mnist(target, mirrors=(dead,), files=files)


def test_download_refuses_a_bad_checksum_and_leaves_no_file(mnist_dir, tmp_path):
    files = {"train_images": (MNIST_FILES["train_images"][0], "0" * 32)}
    with pytest.raises(InputError, match="checksum"):
        download_mnist(tmp_path / "dl", mirrors=(mnist_dir.as_uri() + "/",), files=files)
    assert list((tmp_path / "dl").iterdir()) == []


def test_load_mnist_download_uses_the_real_checksums(tmp_path):
    # The default checksums are the published ones: random files from a local "mirror" are refused.
    mirror = tmp_path / "mirror"
    for name, _ in MNIST_FILES.values():
        write_idx(mirror / name, np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(InputError, match="checksum"):
        load_mnist(tmp_path / "dl", download=True, mirrors=(mirror.as_uri() + "/",))


def test_embedded_sample_is_real_mnist_with_a_fixed_stratified_split():
    assert sample_mnist_dir().is_dir()
    data = load_mnist()
    assert data.train_images.shape == (4000, 28, 28) and data.test_images.shape == (1000, 28, 28)
    assert np.bincount(data.train_labels).tolist() == [400] * 10
    assert np.bincount(data.test_labels).tolist() == [100] * 10
    assert data.train_images.dtype == np.uint8 and data.train_images.max() == 255
    # Real handwriting: digits are mostly background with a centred stroke.
    mean = data.train_images.mean(0)
    assert mean[:3].mean() < 1 and mean[10:18, 10:18].mean() > 60


def test_sample_location_can_be_overridden(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("MEDVAE_SAMPLE_DATA", str(mnist_dir.parent))
    assert sample_mnist_dir() == mnist_dir
    assert load_mnist().train_images.shape == (64, 28, 28)
    monkeypatch.setenv("MEDVAE_SAMPLE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="embedded MNIST sample is not at"):
        load_mnist()
