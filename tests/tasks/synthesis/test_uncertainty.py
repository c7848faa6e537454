"""Interval coverage and sparsification on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from medvae.tasks.synthesis.uncertainty import (interval_coverage, laplace_mixture_cdf, oracle_share,
                                                sparsification)

LEVELS = (0.5, 0.9, 0.95)


def _mixture(rng, n=100_000, k=4):
    """Per voxel, K draws' means and Laplace scales, and an observation drawn from exactly their mixture."""
    means = rng.normal(0, 1, (k, n)) + rng.normal(0, 3, n)
    scales = rng.uniform(0.2, 1.5, (k, n))
    pick = rng.integers(0, k, n)
    observed = rng.laplace(means[pick, np.arange(n)], scales[pick, np.arange(n)])
    return means, scales, observed


def test_laplace_cdf_known_values():
    y = np.array([-np.log(2), 0.0, np.log(2), np.log(10)])
    np.testing.assert_allclose(laplace_mixture_cdf(y, np.zeros((1, 4)), np.ones((1, 4))), [0.25, 0.5, 0.75, 0.95])
    # an equal mixture of two far-apart components: half of the mass each side of the middle
    assert laplace_mixture_cdf(np.array([0.0]), np.array([[-50.0], [50.0]]), np.ones((2, 1)))[0] == pytest.approx(0.5)
    # a scale of 0 is a point mass
    np.testing.assert_allclose(laplace_mixture_cdf(np.array([-1.0, 0.0, 1.0]), np.zeros((1, 3)), np.zeros((1, 3))),
                               [0, 0.5, 1])


def test_coverage_of_one_laplace_has_the_known_interval_bounds():
    # Laplace(0, 1): central intervals ±ln 2 (50 %), ±ln 10 (90 %), ±ln 20 (95 %)
    observed = np.array([0.0, -0.6, 0.8, 2.5, -3.5])
    got = interval_coverage(np.zeros(5), None, observed, LEVELS, scale=np.ones(5))
    assert got == {0.5: pytest.approx(2 / 5), 0.9: pytest.approx(3 / 5), 0.95: pytest.approx(4 / 5)}
    # the Gaussian: ±0.674 (50 %), ±1.645 (90 %), ±1.960 (95 %)
    observed = np.array([0.6, -0.7, 1.7, -1.9, 2.0])
    got = interval_coverage(np.zeros(5), np.ones(5), observed, LEVELS)
    assert got == {0.5: pytest.approx(1 / 5), 0.9: pytest.approx(2 / 5), 0.95: pytest.approx(4 / 5)}


def test_coverage_is_calibrated_when_observed_follows_the_predictive():
    rng = np.random.default_rng(0)
    means, scales, observed = _mixture(rng)
    got = interval_coverage(means, None, observed, LEVELS, scale=scales)
    for level in LEVELS:
        assert abs(got[level] - level) <= 0.02, got
    narrow = interval_coverage(means, None, observed, LEVELS, scale=scales / 2)
    for level in LEVELS:
        assert narrow[level] < level - 0.05, narrow
    # the Gaussian with the right std is calibrated on Gaussian data, too narrow by 2x it is not
    mean, std = rng.normal(0, 5, 100_000), rng.uniform(0.5, 3, 100_000)
    y = rng.normal(mean, std)
    got = interval_coverage(mean, std, y, LEVELS)
    assert all(abs(got[a] - a) <= 0.02 for a in LEVELS), got
    narrow = interval_coverage(mean, std / 2, y, LEVELS)
    assert narrow[0.5] == pytest.approx(0.26, abs=0.02) and all(narrow[a] < a - 0.1 for a in LEVELS)


def test_coverage_counts_only_the_mask():
    rng = np.random.default_rng(1)
    observed = rng.normal(size=(20, 20))
    mask = np.zeros((20, 20), bool)
    mask[:10] = True
    observed[~mask] = 1e6  # outside: far off, does not count
    got = interval_coverage(np.zeros((20, 20)), np.full((20, 20), 1e-9), observed, (0.5,), mask=mask)
    assert got[0.5] == 0.0
    got = interval_coverage(np.zeros((20, 20)), np.full((20, 20), 1e9), observed, (0.5,), mask=mask)
    assert got[0.5] == 1.0
    with pytest.raises(ValueError, match="empty"):
        interval_coverage(np.zeros(3), np.ones(3), np.zeros(3), mask=np.zeros(3, bool))
    with pytest.raises(ValueError, match="std"):
        interval_coverage(np.zeros(3), None, np.zeros(3))


def test_sparsification_known_answers():
    error = np.arange(1.0, 21.0)  # 20 voxels, mean 10.5
    best = sparsification(error, error, (0.1,))
    assert best["mean_all"] == 10.5 and best["oracle"] == [9.5]  # removes 20 and 19
    assert best["model"] == best["oracle"] and best["oracle_share"] == [1.0] and best["random"] == [10.5]
    worst = sparsification(error, -error, (0.1,))  # removes 1 and 2
    assert worst["model"] == [11.5] and worst["oracle_share"] == [-1.0]
    assert oracle_share(worst, 0.1) == -1.0
    assert oracle_share({**worst, "fractions": [float(np.mean([0.1] * 3))]}, 0.1) == -1.0  # 0.1 + round-off
    with pytest.raises(ValueError, match="fraction 0.2"):
        oracle_share(worst, 0.2)
    none = sparsification(error, error, (0.0,))
    assert none["model"] == none["oracle"] == [10.5]


def test_sparsification_ties_are_shared_and_order_does_not_matter():
    error = np.arange(20.0)
    uncertainty = np.r_[np.ones(10), np.zeros(10)]  # the 10 smallest errors tie at the top
    got = sparsification(error, uncertainty, (0.1,))  # 2 of the 10 tied go, each at the tie's mean error 4.5
    assert got["model"][0] == pytest.approx((190 - 2 * 4.5) / 18)
    perm = np.random.default_rng(2).permutation(20)
    assert sparsification(error[perm], uncertainty[perm], (0.1,)) == got
    flat = sparsification(error, np.zeros(20), (0.05, 0.1, 0.2))  # one big tie: exactly the random order
    assert flat["model"] == pytest.approx(flat["random"]) and flat["oracle_share"] == pytest.approx([0, 0, 0])


def test_sparsification_of_uninformative_and_informative_uncertainty():
    rng = np.random.default_rng(3)
    error = np.abs(rng.laplace(0, 1, 100_000))
    unrelated = sparsification(error, rng.random(100_000))
    assert np.allclose(unrelated["model"], unrelated["random"], rtol=0.02)
    assert all(abs(s) < 0.05 for s in unrelated["oracle_share"])
    noisy = sparsification(error, error + rng.normal(0, 0.3, 100_000))
    assert all(0.3 < s < 1 for s in noisy["oracle_share"])
    assert all(o <= m <= r for o, m, r in zip(noisy["oracle"], noisy["model"], noisy["random"]))
    mask = np.zeros(100_000, bool)
    mask[:50_000] = True
    assert sparsification(error, error, mask=mask) == sparsification(error[:50_000], error[:50_000])
    with pytest.raises(ValueError, match="shape"):
        sparsification(error, error[:10])
