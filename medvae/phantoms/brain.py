"""Paired multi-contrast brain phantoms with ground truth, for missing-modality synthesis.

Each subject starts from the MNI152 2009c T1 template and its grey/white-matter probability maps at 2 mm
(``sample_data/brain/``, from nilearn) and gets its own anatomy and scanner:

* a random smooth deformation (cubic interpolation of a coarse grid of displacements, at most
  ``deformation_mm``) and a small global scaling, applied to the template and the tissue maps together;
* CSF as the brain's remainder after grey and white matter;
* contrasts from the tissue fractions: T1 from the template; T2 (CSF bright, GM > WM) and FLAIR (CSF
  suppressed, GM > WM) from tissue values; each with a smooth multiplicative bias field, a global
  intensity factor and a little noise;
* CBF in ml/100 g/min from the fractions with the ASL white paper's values (GM 60, WM 20, CSF 0;
  Alsop et al. 2015), a per-subject global factor, smoothed to ASL's coarse resolution, with
  Gaussian noise (a CBF map averages many label-control pairs and stays noisy) whose level varies as
  ASL's does: a thermal part, uniform in the label-control difference and so inversely proportional to
  the tissue's equilibrium magnetisation M0 once divided by it, and a physiological part proportional to
  the local perfusion signal;
* a brain mask;
* with ``lesions``, synthetic lesions for anomaly detection, drawn from a random stream of their own (so a
  subject's anatomy is the same with and without them), and their labels (``lesion.nii.gz``): 1 MS-like
  white-matter ellipsoids (2-5 mm, bright on FLAIR and T2, slightly dark on T1), 2 a tumour core (6-12 mm, dark
  on T1, bright on T2 and FLAIR) with 3 its oedema (out to 1.7 times its radius, bright on FLAIR and T2),
  4 white-matter lesions visible on T1 only (bright).

scipy's ``map_coordinates`` does the warping, because the maximum displacement in millimetres must be
set directly (MONAI's ``Rand3DElastic`` smooths random offsets, which makes the amplitude implicit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODALITIES = ("t1", "t2", "flair", "cbf", "mask")
#: lesion label -> (name, factor on T1, T2, FLAIR)
LESIONS = {1: ("ms", 0.85, 1.6, 1.8), 2: ("tumour core", 0.6, 1.9, 1.7), 3: ("oedema", 0.9, 1.5, 1.6),
           4: ("t1 only", 1.5, 1.0, 1.0)}
# relative signal of (GM, WM, CSF)
T2_CONTRAST = (0.55, 0.40, 1.00)
FLAIR_CONTRAST = (0.65, 0.50, 0.08)
# relative equilibrium magnetisation (proton density) of (GM, WM, CSF)
M0 = (0.82, 0.70, 1.00)


@dataclass
class BrainPhantomConfig:
    """Args:
    deformation_mm: largest displacement of the random smooth deformation.
    scale_range: the global size factor is drawn from 1 ± this.
    bias_strength: the bias field varies by about ± this (multiplicative).
    intensity_jitter: each structural contrast's global factor is drawn from 1 ± this.
    noise: Gaussian noise on T1/T2/FLAIR, as a fraction of the white-matter signal.
    cbf_gm, cbf_wm, cbf_csf: perfusion of pure tissue, ml/100 g/min.
    cbf_jitter: the subject's global CBF factor is drawn from 1 ± this.
    cbf_fwhm_mm: smoothing of the CBF map (ASL's coarse effective resolution).
    cbf_thermal_noise: standard deviation of the thermal CBF noise in grey matter, ml/100 g/min; elsewhere
        it scales with M0 of grey matter / M0 of the voxel (relative M0: GM 0.82, WM 0.70, CSF 1.0).
    cbf_physio_noise: standard deviation of the physiological CBF noise, as a fraction of the local CBF.
    """

    deformation_mm: float = 4.0
    scale_range: float = 0.05
    bias_strength: float = 0.15
    intensity_jitter: float = 0.1
    noise: float = 0.02
    cbf_gm: float = 60.0
    cbf_wm: float = 20.0
    cbf_csf: float = 0.0
    cbf_jitter: float = 0.1
    cbf_fwhm_mm: float = 4.0
    cbf_thermal_noise: float = 4.0
    cbf_physio_noise: float = 0.12


def template_dir() -> Path:
    """The folder with ``mni152_{t1,gm,wm}_2mm.nii.gz`` (installed sample data, else the source tree)."""
    from medvae.data.mnist import sample_mnist_dir

    return sample_mnist_dir().parent / "brain"


def load_templates() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``({"t1", "gm", "wm"}: float32 arrays in [0, 1], affine)`` of the 2 mm MNI152 templates."""
    from medvae.io.images import read_image

    folder = template_dir()
    images = {name: read_image(folder / f"mni152_{name}_2mm.nii.gz") for name in ("t1", "gm", "wm")}
    arrays = {name: image.array.astype(np.float32) / 255.0 for name, image in images.items()}
    return arrays, images["t1"].affine


def _smooth_field(rng, shape, grid: int, amplitude: float) -> np.ndarray:
    """A smooth random field: uniform values on a coarse grid, cubic-interpolated to ``shape``."""
    from scipy.ndimage import zoom

    coarse = rng.uniform(-amplitude, amplitude, (grid,) * len(shape))
    return zoom(coarse, [n / grid for n in shape], order=3, mode="nearest")[tuple(slice(0, n) for n in shape)]


def _warp(arrays: dict[str, np.ndarray], rng, config: BrainPhantomConfig, spacing: float) -> dict[str, np.ndarray]:
    from scipy.ndimage import map_coordinates

    shape = next(iter(arrays.values())).shape
    centre = (np.array(shape) - 1) / 2
    scale = 1 + rng.uniform(-config.scale_range, config.scale_range)
    grids = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    coords = []
    for axis, g in enumerate(grids):
        displacement = _smooth_field(rng, shape, 5, config.deformation_mm / spacing)
        coords.append(centre[axis] + (g - centre[axis]) / scale + displacement)
    return {k: map_coordinates(v, coords, order=1, mode="constant", cval=0.0).astype(np.float32)
            for k, v in arrays.items()}


def _gaussian(array: np.ndarray, fwhm_mm: float, spacing: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(array, fwhm_mm / spacing / 2.3548)


def brain_subject(seed: int, config: BrainPhantomConfig | None = None, templates=None,
                  lesions: bool = False) -> tuple[dict, np.ndarray]:
    """One phantom subject (with ``lesions``: see the module docstring).

    Returns:
        ``({"t1", "t2", "flair", "cbf", "cbf_truth", "mask", "gm", "wm", "csf"}: float32 arrays (x, y, z),
        affine)``; ``cbf_truth`` is the CBF before noise; with ``lesions`` also ``"lesion"`` (uint8 labels).
        Structural contrasts are in arbitrary units (white matter about 600); CBF in ml/100 g/min.
    """
    config = config or BrainPhantomConfig()
    arrays, affine = templates or load_templates()
    spacing = float(abs(affine[0, 0]))
    rng = np.random.default_rng(seed)
    brain = (arrays["t1"] > 0).astype(np.float32)
    warped = _warp({**arrays, "brain": brain}, rng, config, spacing)
    gm, wm = np.clip(warped["gm"], 0, 1), np.clip(warped["wm"], 0, 1)
    total = gm + wm
    over = total > 1
    gm[over], wm[over] = gm[over] / total[over], wm[over] / total[over]
    csf = np.clip(warped["brain"] - gm - wm, 0, 1)
    mask = (warped["brain"] > 0.5).astype(np.float32)
    shape = gm.shape

    def bias():
        return np.exp(_smooth_field(rng, shape, 3, config.bias_strength))

    def jitter():
        return 1 + rng.uniform(-config.intensity_jitter, config.intensity_jitter)

    white = 600.0
    t1_wm = float(np.median(warped["t1"][wm > 0.9])) if np.any(wm > 0.9) else 1.0
    out = {
        "t1": warped["t1"] / t1_wm * white,
        "t2": white / T2_CONTRAST[1] * (T2_CONTRAST[0] * gm + T2_CONTRAST[1] * wm + T2_CONTRAST[2] * csf),
        "flair": white / FLAIR_CONTRAST[1] * (FLAIR_CONTRAST[0] * gm + FLAIR_CONTRAST[1] * wm
                                              + FLAIR_CONTRAST[2] * csf),
    }
    labels = _lesions(np.random.default_rng([seed, 1]), gm, wm, mask, spacing) if lesions else None
    if labels is not None:
        for label, (_, *factors) in LESIONS.items():
            soft = _gaussian((labels == label).astype(np.float32), 1.5, spacing)  # soft edges, 1.5 mm FWHM
            for name, factor in zip(("t1", "t2", "flair"), factors):
                out[name] = out[name] * (1 + (factor - 1) * soft)
    for name in ("t1", "t2", "flair"):
        noisy = out[name] * bias() * jitter() + rng.normal(0, config.noise * white, shape)
        out[name] = (np.clip(noisy, 0, None) * mask).astype(np.float32)
    factor = 1 + rng.uniform(-config.cbf_jitter, config.cbf_jitter)
    cbf = factor * (config.cbf_gm * gm + config.cbf_wm * wm + config.cbf_csf * csf)
    cbf = _gaussian(cbf, config.cbf_fwhm_mm, spacing)
    truth = cbf * mask
    m0 = M0[0] * gm + M0[1] * wm + M0[2] * csf
    thermal = config.cbf_thermal_noise * M0[0] / np.maximum(m0, M0[1])
    sigma = np.sqrt(thermal**2 + (config.cbf_physio_noise * np.clip(cbf, 0, None)) ** 2)
    cbf = cbf + sigma * rng.normal(0, 1, shape)
    out["cbf"] = (cbf * mask).astype(np.float32)
    out["cbf_truth"] = truth.astype(np.float32)
    out["mask"] = mask
    out.update(gm=gm, wm=wm, csf=csf)
    if labels is not None:
        out["lesion"] = (labels * (mask > 0)).astype(np.uint8)
    return out, affine


def _lesions(rng, gm: np.ndarray, wm: np.ndarray, mask: np.ndarray, spacing: float) -> np.ndarray:
    """Lesion labels (:data:`LESIONS`) for one subject, placed in its white matter (the tumour anywhere in tissue)."""
    labels = np.zeros(gm.shape, np.uint8)
    grid = np.stack(np.meshgrid(*(np.arange(n) * spacing for n in gm.shape), indexing="ij"), -1)

    def place(where, radii_mm, label, inside=None):
        candidates = np.argwhere(where)
        if not len(candidates):
            return None
        centre = candidates[rng.integers(len(candidates))] * spacing
        d = np.sqrt((((grid - centre) / np.asarray(radii_mm)) ** 2).sum(-1))
        region = (d <= 1) & (mask > 0)
        labels[region & (labels == 0) if inside is None else region & inside] = label
        return centre, d

    deep_wm = wm > 0.8
    for _ in range(int(rng.integers(3, 8))):
        place(deep_wm, rng.uniform(2, 5, 3), 1)
    radius = rng.uniform(6, 12)
    placed = place((gm + wm > 0.9) & (mask > 0), [radius] * 3, 2)
    if placed is not None:
        _, d = placed
        labels[(d > 1) & (d <= 1.7) & (mask > 0) & (labels == 0)] = 3
    for _ in range(int(rng.integers(1, 3))):
        place(deep_wm & (labels == 0), [rng.uniform(3, 6)] * 3, 4)
    return labels


def write_brain_phantoms(n: int, out: str | Path, seed: int = 0, config: BrainPhantomConfig | None = None,
                         overwrite: bool = False, progress: bool = True, lesions: bool = False) -> list[Path]:
    """Write ``n`` subjects as ``out/sub-001/{t1,t2,flair,cbf,mask}.nii.gz``; returns the subject folders.

    Each also gets ``cbf_truth.nii.gz``, the noise-free perfusion that the (noisy) CBF map measures: the
    phantom's ground truth, which ``medvae evaluate synthesis`` uses when it is there.

    Subject ``i`` is drawn with seed ``(seed, i)``, so adding subjects keeps the earlier ones. With ``lesions``
    each has lesions and ``lesion.nii.gz`` (their labels, see the module docstring).
    """
    from tqdm.auto import tqdm

    from medvae.io.images import Image, write_image
    from medvae.errors import UsageError, check_positive

    check_positive("subjects", n)
    out = Path(out)
    templates = load_templates()
    folders = []
    for i in tqdm(range(n), desc="phantoms", unit="subject", disable=not progress, leave=False):
        folder = out / f"sub-{i + 1:03d}"
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise UsageError(f"out {folder} already holds files; pass --overwrite or choose another folder", param="out")
        volumes, affine = brain_subject(int(np.random.SeedSequence([seed, i]).generate_state(1)[0]), config,
                                        templates, lesions=lesions)
        for name in (*MODALITIES, "cbf_truth", *(("lesion",) if lesions else ())):
            array = volumes[name].astype(np.uint8) if name in ("mask", "lesion") else volumes[name]
            note = {"cbf": "CBF ml/100g/min", "mask": "brain mask", "lesion": "lesion labels (1 MS-like, 2 "
                    "tumour core, 3 oedema, 4 T1-only)",
                    "cbf_truth": "noise-free CBF ml/100g/min"}.get(name, f"{name.upper()} a.u.")
            write_image(Image(array=array, affine=affine, format="nifti", spacing_known=True,
                              notes=[f"medvae brain phantom {note}, seed {seed} subject {i + 1}"]),
                        folder / f"{name}.nii.gz", overwrite=True)
        folders.append(folder)
    return folders
