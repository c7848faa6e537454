"""Lung data set readers: the plain, Montgomery, Shenzhen and JSRT + SCR layouts, JSRT's raw films, masks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image as PILImage

from medvae.data.lung_datasets import LungPair, load_lung_mask, lung_pairs, read_jsrt_img, read_lung_image
from medvae.errors import InputError, UsageError


def save(path, rows_cols: np.ndarray):
    """Write a (rows, columns) uint8 array as PNG/GIF (by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(rows_cols.astype(np.uint8)).save(path)
    return path


def picture(seed=0, shape=(32, 32)):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def halves(shape=(32, 32)):
    """(left half on screen, right half on screen) masks as (rows, columns) 0/255."""
    left, right = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    left[4:28, 2:14] = 255
    right[6:26, 18:30] = 255
    return left, right


def write_jsrt(path, rows_cols: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    rows_cols.astype(">u2").tofile(path)
    return path


# ---------------------------------------------------------------------------------------------- plain
def test_plain_layout_pairs_by_stem_and_mask_suffix(tmp_path):
    left, right = halves()
    save(tmp_path / "img" / "a.png", picture(1))
    save(tmp_path / "img" / "b.png", picture(2))
    save(tmp_path / "msk" / "a.png", left)
    save(tmp_path / "msk" / "b_mask.png", right)
    pairs = lung_pairs(tmp_path / "img", tmp_path / "msk")
    assert pairs.layout == "plain" and pairs.skipped == []
    assert pairs == [LungPair(tmp_path / "img" / "a.png", [tmp_path / "msk" / "a.png"]),
                     LungPair(tmp_path / "img" / "b.png", [tmp_path / "msk" / "b_mask.png"])]
    mask = load_lung_mask(pairs[0], (32, 32))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    np.testing.assert_array_equal(mask, (left.T > 0).astype(np.uint8))  # (x, y): PNG pixel (r, c) is [c, r]


def test_a_folder_with_images_and_masks_is_plain(tmp_path):
    save(tmp_path / "images" / "cxr-0001.png", picture())
    save(tmp_path / "masks" / "cxr-0001.png", halves()[0])
    pairs = lung_pairs(tmp_path)
    assert pairs.layout == "plain" and [p.image.name for p in pairs] == ["cxr-0001.png"]


def test_plain_image_without_mask_is_named(tmp_path):
    save(tmp_path / "img" / "a.png", picture())
    save(tmp_path / "img" / "lonely.png", picture())
    save(tmp_path / "msk" / "a.png", halves()[0])
    with pytest.raises(InputError, match=r"lonely\.png: no mask for it in .*msk"):
        lung_pairs(tmp_path / "img", tmp_path / "msk")


def test_two_masks_for_one_image_is_an_error(tmp_path):
    save(tmp_path / "img" / "a.png", picture())
    save(tmp_path / "msk" / "a.png", halves()[0])
    save(tmp_path / "msk" / "a_mask.png", halves()[0])
    with pytest.raises(InputError, match="2 masks match it"):
        lung_pairs(tmp_path / "img", tmp_path / "msk")


# ---------------------------------------------------------------------------------------------- Montgomery
@pytest.fixture
def montgomery(tmp_path):
    root = tmp_path / "MontgomerySet"
    left, right = halves()
    for k in (1, 2):
        name = f"MCUCXR_000{k}_0.png"
        save(root / "CXR_png" / name, picture(k))
        save(root / "ManualMask" / "leftMask" / name, right)  # patient's left lung: the viewer's right
        save(root / "ManualMask" / "rightMask" / name, left)
    return root


def test_montgomery_pairs_both_lungs_and_joins_them(montgomery):
    pairs = lung_pairs(montgomery)
    assert pairs.layout == "montgomery" and len(pairs) == 2
    first = pairs[0]
    assert first.image == montgomery / "CXR_png" / "MCUCXR_0001_0.png"
    assert sorted(p.parent.name for p in first.masks) == ["leftMask", "rightMask"]
    left, right = halves()
    mask = load_lung_mask(first, (32, 32))
    np.testing.assert_array_equal(mask, ((left | right).T > 0).astype(np.uint8))
    # the ManualMask folder may also be given as the masks
    again = lung_pairs(montgomery / "CXR_png", montgomery / "ManualMask")
    assert again.layout == "montgomery" and [p.masks for p in again] == [p.masks for p in pairs]


def test_montgomery_missing_side_is_named(montgomery):
    (montgomery / "ManualMask" / "leftMask" / "MCUCXR_0002_0.png").unlink()
    with pytest.raises(InputError, match=r"MCUCXR_0002_0\.png: no left lung mask"):
        lung_pairs(montgomery)


# ---------------------------------------------------------------------------------------------- Shenzhen
@pytest.mark.parametrize("mask_folder", ["mask", "masks"])
def test_shenzhen_skips_images_without_masks_and_counts_them(tmp_path, caplog, mask_folder):
    root = tmp_path / "ChinaSet"
    for k, name in enumerate(("CHNCXR_0001_0", "CHNCXR_0002_0", "CHNCXR_0003_1")):
        save(root / "CXR_png" / f"{name}.png", picture(k))
    save(root / mask_folder / "CHNCXR_0001_0_mask.png", halves()[0])
    save(root / mask_folder / "CHNCXR_0003_1_mask.png", halves()[1])
    with caplog.at_level(logging.WARNING, logger="medvae.data.lung_datasets"):
        pairs = lung_pairs(root)
    assert pairs.layout == "shenzhen"
    assert [p.image.name for p in pairs] == ["CHNCXR_0001_0.png", "CHNCXR_0003_1.png"]
    assert [p.masks[0].name for p in pairs] == ["CHNCXR_0001_0_mask.png", "CHNCXR_0003_1_mask.png"]
    assert [p.name for p in pairs.skipped] == ["CHNCXR_0002_0.png"]
    assert "1 of 3 images have no lung mask" in caplog.text


def test_shenzhen_without_any_matching_mask_is_an_error(tmp_path):
    save(tmp_path / "CXR_png" / "CHNCXR_0001_0.png", picture())
    save(tmp_path / "mask" / "other_mask.png", halves()[0])
    with pytest.raises(InputError, match="no mask matches an image"):
        lung_pairs(tmp_path)


# ---------------------------------------------------------------------------------------------- JSRT + SCR
def test_read_jsrt_img_inverts_and_keeps_geometry(tmp_path):
    raw = np.zeros((64, 64), np.uint16)
    raw[10, 40] = 4095  # film: the highest value is the darkest point
    raw[50, 5] = 1000
    path = write_jsrt(tmp_path / "JPCLN001.IMG", raw)
    assert path.stat().st_size == 2 * 64 * 64
    image = read_jsrt_img(path)
    assert image.array.shape == (64, 64) and image.array.dtype == np.uint16
    assert image.array[40, 10] == 0 and image.array[5, 50] == 3095 and image.array[0, 0] == 4095  # (x, y)
    assert image.bits == 12 and image.spacing_known and image.value_range == (0.0, 4095.0)
    # the field stays JSRT's 358.4 mm: 0.175 mm for 2048 pixels, 5.6 mm for this 64-pixel fixture
    np.testing.assert_allclose(image.spacing, (0.175 * 2048 / 64,) * 2)
    assert read_lung_image(path).array[40, 10] == 0


def test_read_jsrt_img_rejects_other_files(tmp_path):
    odd = tmp_path / "odd.IMG"
    odd.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="not a square 16-bit raw image"):
        read_jsrt_img(odd)
    wide = write_jsrt(tmp_path / "wide.IMG", np.full((8, 8), 5000, np.uint16))
    with pytest.raises(InputError, match="do not fit 12 bits"):
        read_jsrt_img(wide)


@pytest.fixture
def jsrt(tmp_path):
    """JSRT films (64 x 64 here) and SCR masks at half their size, split across fold1 and fold2."""
    root = tmp_path / "jsrt"
    left, right = halves()
    for k, fold in ((1, "fold1"), (2, "fold2")):
        write_jsrt(root / "All247images" / f"JPCLN00{k}.IMG", np.full((64, 64), 100 * k, np.uint16))
        save(root / "scr" / fold / "masks" / "left lung" / f"JPCLN00{k}.gif", right)
        save(root / "scr" / fold / "masks" / "right lung" / f"JPCLN00{k}.gif", left)
        save(root / "scr" / fold / "masks" / "heart" / f"JPCLN00{k}.gif", left)  # other organs are ignored
    return root


def test_jsrt_with_scr_masks_pairs_and_resizes(jsrt):
    pairs = lung_pairs(jsrt)
    assert pairs.layout == "jsrt" and [p.image.name for p in pairs] == ["JPCLN001.IMG", "JPCLN002.IMG"]
    assert [sorted(m.parent.name for m in p.masks) for p in pairs] == [["left lung", "right lung"]] * 2
    assert pairs[1].masks[0].parts[-4] == "fold2"
    image = read_lung_image(pairs[0].image)
    mask = load_lung_mask(pairs[0], image.array.shape)
    assert mask.shape == (64, 64)
    left, right = halves()
    half = ((left | right).T > 0).astype(np.uint8)
    np.testing.assert_array_equal(mask, np.kron(half, np.ones((2, 2), np.uint8)))  # each SCR pixel covers 2 x 2
    # the SCR folder may be given as the masks
    again = lung_pairs(jsrt / "All247images", jsrt / "scr")
    assert again.layout == "jsrt" and [p.masks for p in again] == [p.masks for p in pairs]


def test_jsrt_image_without_scr_mask_is_named(jsrt):
    write_jsrt(jsrt / "All247images" / "JPCNN010.IMG", np.zeros((64, 64), np.uint16))
    with pytest.raises(InputError, match=r"JPCNN010\.IMG: no right lung mask"):
        lung_pairs(jsrt)


def test_jsrt_without_scr_says_so(tmp_path):
    write_jsrt(tmp_path / "JPCLN001.IMG", np.zeros((64, 64), np.uint16))
    with pytest.raises(InputError, match="no SCR masks"):
        lung_pairs(tmp_path)


# ---------------------------------------------------------------------------------------------- errors
def test_unknown_layout_lists_the_layouts(tmp_path):
    save(tmp_path / "stuff" / "x.png", picture())
    with pytest.raises(InputError) as err:
        lung_pairs(tmp_path / "stuff")
    message = str(err.value)
    assert str(tmp_path / "stuff") in message and "\n" not in message
    for layout in ("plain", "Montgomery", "Shenzhen", "JSRT + SCR"):
        assert layout in message


def test_missing_folders_are_named(tmp_path):
    with pytest.raises(UsageError, match="nowhere: no such folder"):  # the folder the user named: exit code 2
        lung_pairs(tmp_path / "nowhere")
    (tmp_path / "img").mkdir()
    with pytest.raises(UsageError, match="nomasks: no such folder"):
        lung_pairs(tmp_path / "img", tmp_path / "nomasks")


def test_mask_of_another_shape_is_refused(tmp_path):
    mask = save(tmp_path / "m.png", np.full((32, 16), 255, np.uint8))
    with pytest.raises(InputError, match="do not have the same shape"):
        load_lung_mask(LungPair(tmp_path / "i.png", [mask]), (32, 32))
