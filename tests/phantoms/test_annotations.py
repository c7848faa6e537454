"""Burnt-in annotations for enhancer training: drawn in, reproducible, and kept in the clean target."""

from __future__ import annotations

import numpy as np
import pytest

from medvae.errors import UsageError
from medvae.phantoms.annotations import burn_in, collimate
from medvae.tasks.cxr.train_enhance import DegradedPatches


def film(shape=(96, 80)) -> np.ndarray:
    x, y = np.meshgrid(np.linspace(0.2, 0.6, shape[0]), np.linspace(0.3, 0.5, shape[1]), indexing="ij")
    return (x * y + 0.2).astype(np.float32)


def test_burn_in_draws_sharp_glyphs_into_a_copy_and_leaves_the_rest():
    image = film()
    before = image.copy()
    out = burn_in(image, np.random.default_rng(3), count=3)
    assert np.array_equal(image, before)  # the caller's array is not touched
    assert out.shape == image.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    changed = np.abs(out - image) > 1e-6
    assert 0 < changed.mean() < 0.6  # something drawn, most of the film left alone
    assert np.abs(out - image)[changed].max() > 0.2  # high contrast, as burnt-in text is
    assert np.array_equal(out[~changed], image[~changed])


def test_burn_in_is_reproducible_from_its_generator_and_differs_between_seeds():
    image = film()
    a = burn_in(image, np.random.default_rng(7))
    assert np.array_equal(a, burn_in(image, np.random.default_rng(7)))
    assert not np.array_equal(a, burn_in(image, np.random.default_rng(8)))


def test_burn_in_refuses_a_volume():
    with pytest.raises(UsageError, match="must be 2-D"):
        burn_in(np.zeros((8, 8, 8)), np.random.default_rng(0))


def test_annotated_patches_carry_the_annotations_in_input_and_target():
    images = [film((160, 160))]
    plain = DegradedPatches(images, 64, 24, kinds=("noise",), severity=(0.5, 0.5), seed=1, clean_fraction=1.0)
    marked = DegradedPatches(images, 64, 24, kinds=("noise",), severity=(0.5, 0.5), seed=1, clean_fraction=1.0,
                             annotations=1.0)
    differ = 0
    for i in range(len(plain)):
        item = marked[i]
        # clean_fraction 1: the input is the clean target itself, annotations and all
        assert np.array_equal(item["image"].numpy(), item["target"].numpy())
        differ += not np.array_equal(item["target"].numpy(), plain[i]["target"].numpy())
    assert differ == len(plain)  # same crops (drawn before the annotations), every one annotated


def test_no_annotations_leaves_the_patches_as_they_were():
    images = [film((160, 160))]
    a = DegradedPatches(images, 64, 8, kinds=("noise", "blur"), severity=(0.2, 0.8), seed=4)
    b = DegradedPatches(images, 64, 8, kinds=("noise", "blur"), severity=(0.2, 0.8), seed=4, annotations=0.0)
    for i in range(len(a)):
        assert np.array_equal(a[i]["image"].numpy(), b[i]["image"].numpy())


def test_border_patches_are_cut_against_the_films_edges():
    image = film((200, 180))
    image[:, -1] = 0.0  # a dark last row, as resized films often have
    patches = DegradedPatches([image], 64, 64, kinds=("noise",), severity=(0.5, 0.5), seed=2, clean_fraction=1.0,
                              borders=1.0)
    last_row = sum(bool((patches[i]["target"][0, :, -1] == 0).all()) for i in range(len(patches)))
    # half the patches come from scale 1 (at scale 2 the row is averaged away), one edge in four: about 8 of 64
    assert 3 <= last_row <= 16
    never = DegradedPatches([image], 64, 64, kinds=("noise",), severity=(0.5, 0.5), seed=2, clean_fraction=1.0)
    assert sum(bool((never[i]["target"][0, :, -1] == 0).all()) for i in range(len(never))) <= 2


def test_collimation_flattens_one_side_of_a_sharp_straight_edge():
    image = film((120, 100))
    for seed in range(6):
        out = collimate(image, np.random.default_rng(seed))
        assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1
        flat = np.abs(out - image) > 1e-6
        assert 0.1 < flat.mean() < 0.9  # a margin, not the whole film
        margin = out[np.abs(out - np.median(out[flat])) < 1e-6]
        assert margin.size > 0.5 * flat.sum()  # most of what changed is one flat grey level
    assert np.array_equal(collimate(image, np.random.default_rng(3)), collimate(image, np.random.default_rng(3)))
    with pytest.raises(UsageError, match="must be 2-D"):
        collimate(np.zeros((4, 4, 4)), np.random.default_rng(0))


def test_appearance_changes_exposure_or_contrast_in_both_input_and_target():
    images = [film((160, 160))]
    plain = DegradedPatches(images, 64, 32, kinds=("noise",), severity=(0.5, 0.5), seed=3, clean_fraction=1.0)
    varied = DegradedPatches(images, 64, 32, kinds=("noise",), severity=(0.5, 0.5), seed=3, clean_fraction=1.0,
                             appearance=1.0)
    for i in range(len(plain)):
        item, before = varied[i]["target"].numpy(), plain[i]["target"].numpy()
        assert np.array_equal(varied[i]["image"].numpy(), item)  # the input carries the change too
        assert not np.allclose(item, before, atol=1e-3)  # every patch changed
        # exposure and contrast keep the order of grey levels: a change of appearance, not of content
        assert np.corrcoef(item.ravel(), before.ravel())[0, 1] > 0.9
    noisy = DegradedPatches(images, 64, 8, kinds=("noise",), severity=(0.5, 0.5), seed=3, appearance=1.0)
    item = noisy[0]
    assert not np.array_equal(item["image"].numpy(), item["target"].numpy())  # the other kinds still degrade
