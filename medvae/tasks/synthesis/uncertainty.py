"""How far a synthesis' uncertainty can be trusted: interval coverage and sparsification (numpy only).

* :func:`interval_coverage`: the share of voxels whose observed value lies in the central interval of the
  predictive distribution at each level (50 %, 90 %, 95 %). A calibrated model covers each level's share.
* :func:`sparsification`: the mean absolute error left after removing the voxels the model is least sure of,
  beside the oracle (removing by the error itself) and a random order. An uncertainty that tells a user where
  not to trust the image removes much of what the oracle removes.

The synthesis model's predictive distribution per voxel is the equal-weight mixture over its K draws of
Laplace(mean_k, b_k) (channel 0 of draw k its mean, channel 1 the log of its Laplace scale b_k; see
:func:`medvae.models.synthesis.predictive_moments`). :func:`interval_coverage` uses that mixture exactly, through
its CDF: an observed value ``y`` lies in the central interval at level ``a`` if and only if
``(1 - a) / 2 <= F(y) <= (1 + a) / 2`` (the mixture's CDF ``F`` is continuous and strictly increasing where
every b_k > 0), so no quantile has to be searched for. Without scales it falls back to a Gaussian with the
total standard deviation, ``|y - mean| <= z_a * std``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

LEVELS = (0.5, 0.9, 0.95)
FRACTIONS = (0.05, 0.1, 0.2)


def laplace_mixture_cdf(y, means, scales) -> np.ndarray:
    """CDF at ``y`` ``(...)`` of the equal-weight mixture over the first axis of Laplace(``means``, ``scales``)
    ``(K, ...)``: ``F(y) = 1/K sum_k L((y - m_k) / b_k)``, ``L(z) = 1/2 + sign(z) (1 - exp(-|z|)) / 2``.

    A scale of 0 is a point mass (its CDF a step, 1/2 at the point itself)."""
    y = np.asarray(y, np.float64)
    means, scales = np.asarray(means, np.float64), np.asarray(scales, np.float64)
    if means.shape != scales.shape or means.shape[1:] != y.shape:
        raise ValueError(f"means and scales must be (K, *{y.shape}), got {means.shape} and {scales.shape}")
    if (scales < 0).any():
        raise ValueError("scales must be 0 or more")
    total = np.zeros(y.shape)
    for m, b in zip(means, scales):  # one draw at a time: (K, N) at once would not fit for large volumes
        d = y - m
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(b > 0, np.abs(d) / np.where(b > 0, b, 1.0), np.where(d == 0, 0.0, np.inf))
        total += 0.5 + 0.5 * np.sign(d) * -np.expm1(-z)
    return total / len(means)


def interval_coverage(mean, std, observed, levels=LEVELS, mask=None, scale=None) -> dict[float, float]:
    """Share of voxels whose ``observed`` value falls in the central interval of the predictive distribution.

    Args:
        mean: with ``scale``: the draws' means ``(K, ...)`` (or ``(...)`` for one draw); without: the
            predictive mean ``(...)``.
        std: the total predictive standard deviation ``(...)``; used only without ``scale`` (may be None then).
        observed: what was measured ``(...)``.
        levels: central interval probabilities in (0, 1).
        mask: voxels to count ``(...)`` (default: all).
        scale: the draws' Laplace scales b_k ``(K, ...)`` in the same units as ``mean``. Given, the predictive
            is the mixture over the draws of Laplace(mean_k, b_k), exact for the synthesis model; the interval
            test is ``(1 - a) / 2 <= F(observed) <= (1 + a) / 2`` with the mixture's CDF ``F``. Not given, a
            Gaussian ``N(mean, std^2)``: ``|observed - mean| <= z_a * std`` with ``z_a`` the normal quantile
            at ``(1 + a) / 2``.

    Returns:
        ``{level: share in [0, 1]}``.
    """
    observed = np.asarray(observed, np.float64)
    mask = np.ones(observed.shape, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != observed.shape:
        raise ValueError(f"mask {mask.shape} and observed {observed.shape} differ in shape")
    if not mask.any():
        raise ValueError("mask is empty: nothing to count")
    levels = tuple(float(a) for a in levels)
    if any(not 0 < a < 1 for a in levels):
        raise ValueError(f"levels must lie in (0, 1), got {levels}")
    y = observed[mask]
    if scale is not None:
        means, scales = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        if means.shape == observed.shape:  # one draw
            means, scales = means[None], scales[None]
        pit = laplace_mixture_cdf(y, means[:, mask], scales[:, mask])
        return {a: float(np.mean(np.abs(pit - 0.5) <= a / 2)) for a in levels}
    if std is None:
        raise ValueError("give std (a Gaussian predictive) or scale (a Laplace mixture)")
    dist = np.abs(y - np.asarray(mean, np.float64)[mask])
    s = np.asarray(std, np.float64)[mask]
    return {a: float(np.mean(dist <= NormalDist().inv_cdf((1 + a) / 2) * s)) for a in levels}


def _remaining_means(error: np.ndarray, order_by: np.ndarray, counts: list[int]) -> list[float]:
    """Mean ``error`` left after removing, for each ``n`` in ``counts``, the ``n`` voxels highest in ``order_by``.

    Voxels tied in ``order_by`` across the cut are removed in equal shares (each counts with its group's mean
    error): the expected result of breaking the tie at random, whatever the voxels' order."""
    keys, inverse = np.unique(-order_by, return_inverse=True)  # groups, highest first
    group_sum = np.bincount(inverse, weights=error, minlength=len(keys))
    group_n = np.bincount(inverse, minlength=len(keys)).astype(np.float64)
    cum_n, cum_sum = np.cumsum(group_n), np.cumsum(group_sum)
    total, size = float(error.sum()), len(error)
    out = []
    for n in counts:
        g = int(np.searchsorted(cum_n, n))  # the group the cut falls in
        full_n = cum_n[g - 1] if g else 0.0
        full_sum = cum_sum[g - 1] if g else 0.0
        removed = full_sum + ((n - full_n) * group_sum[g] / group_n[g] if n > full_n else 0.0)
        out.append((total - removed) / (size - n))
    return out


def sparsification(error, uncertainty, fractions=FRACTIONS, mask=None) -> dict:
    """Mean absolute error left after removing the ``fractions`` of voxels with the highest ``uncertainty``.

    Args:
        error: per-voxel error (its absolute value is used).
        uncertainty: per-voxel uncertainty, same shape; voxels tied on it across a cut are removed in equal
            shares (deterministic, independent of voxel order; a constant uncertainty gives the random curve).
        fractions: shares of voxels to remove, each in [0, 1); ``round(f * N)`` voxels are removed.
        mask: voxels to use (default: all).

    Returns:
        ``{"fractions", "mean_all", "model", "oracle", "random", "oracle_share"}``: ``model`` removes by
        ``uncertainty``, ``oracle`` by the error itself (the best any ordering can do), ``random`` is the
        expected value of a random order (the overall mean at every fraction); ``oracle_share`` per fraction is
        ``(mean_all - model) / (mean_all - oracle)``, the share of the oracle's cut the uncertainty achieves
        (1: as good as the oracle, 0: no better than random; NaN where the oracle cuts nothing).
    """
    error, uncertainty = np.abs(np.asarray(error, np.float64)), np.asarray(uncertainty, np.float64)
    if error.shape != uncertainty.shape:
        raise ValueError(f"error {error.shape} and uncertainty {uncertainty.shape} differ in shape")
    if mask is not None:
        mask = np.asarray(mask, bool)
        error, uncertainty = error[mask], uncertainty[mask]
    error, uncertainty = error.ravel(), uncertainty.ravel()
    if not len(error):
        raise ValueError("no voxels to sparsify")
    if not np.isfinite(uncertainty).all() or not np.isfinite(error).all():
        raise ValueError("error and uncertainty must be finite")
    fractions = [float(f) for f in fractions]
    if any(not 0 <= f < 1 for f in fractions):
        raise ValueError(f"fractions must lie in [0, 1), got {fractions}")
    counts = [min(int(round(f * len(error))), len(error) - 1) for f in fractions]
    mean_all = float(error.mean())
    model = _remaining_means(error, uncertainty, counts)
    oracle = _remaining_means(error, error, counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = [float((mean_all - m) / (mean_all - o)) if mean_all - o > 0 else float("nan")
                 for m, o in zip(model, oracle)]
    return {"fractions": fractions, "mean_all": mean_all, "model": [float(v) for v in model],
            "oracle": [float(v) for v in oracle], "random": [mean_all] * len(fractions), "oracle_share": share}


def oracle_share(curve: dict, fraction: float = 0.1) -> float:
    """``(mean_all - model) / (mean_all - oracle)`` at ``fraction`` of a :func:`sparsification` result."""
    near = [i for i, f in enumerate(curve["fractions"]) if abs(f - fraction) < 1e-9]
    if not near:
        raise ValueError(f"the curve has no point at fraction {fraction} (it has {curve['fractions']})")
    i = near[0]
    cut = curve["mean_all"] - curve["oracle"][i]
    return float((curve["mean_all"] - curve["model"][i]) / cut) if cut > 0 else float("nan")
