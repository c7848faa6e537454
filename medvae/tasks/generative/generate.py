"""``medvae generate MODEL``: new images from a trained VAE or VAE-GAN, marked synthetic.

Three modes: draws from the prior (``n`` images), a latent grid (2-D latents: the decoded manifold, as
in the MNIST demo) and an interpolation between two encoded images. Each writes its images (PNG, NIfTI
or DICOM, DICOM and NIfTI marked synthetic) and a contact sheet ``contact_sheet.png``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import OutputExists, UsageError, check_positive


@dataclass
class GenerateResult:
    files: list[Path]
    contact_sheet: Path
    resumed: int = 0  # images an interrupted run with the same settings had written, kept as they were


#: the file a run keeps in its output folder while it writes: its settings, so that a re-run after a kill resumes
RUN_MARKER = ".medvae-generate.json"


def generate(model_path: str | os.PathLike, out: str | os.PathLike, *, n: int = 16, fmt: str = "png",
             seed: int = 0, grid: bool = False, grid_size: int = 15, grid_range: float = 3.0,
             interpolate: tuple[str | os.PathLike, str | os.PathLike] | None = None, steps: int = 8,
             device: str = "auto", overwrite: bool = False, deidentify: bool = False) -> GenerateResult:
    """Generate images with a medvae model file and write them to the folder ``out``.

    Args:
        model_path: a model file from ``medvae train vae|vaegan`` (or the MNIST demo).
        out: output folder (created). If it holds the images this run would write (or its contact sheet), nothing
            is done (:class:`~medvae.errors.OutputExists`) unless ``overwrite``, which replaces that set. A run
            that was killed before its contact sheet is resumed by the same command: the images it wrote are kept
            (the same settings draw the same images) and the rest are written.
        n: images to draw from the prior.
        fmt: ``png``, ``nii`` or ``dcm``.
        seed: fixes the draws: the same seed gives the same images.
        grid: decode a ``grid_size`` x ``grid_size`` grid over [-grid_range, grid_range]^2 (2-D latents only).
        interpolate: two image files to encode; their means are joined by ``steps`` decoded points.
    """
    import torch

    from medvae.checkpoint import load_model
    from medvae.io.images import normalize_format
    from medvae.train import resolve_device

    fmt = normalize_format(fmt)
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"out {out} is a file; give a folder for the generated images", param="out")
    if fmt not in ("png", "nifti", "dicom"):
        raise UsageError(f"format must be png, nii or dcm, got {fmt!r}", param="format")
    check_positive("n", n)
    if grid and interpolate:
        raise UsageError("grid and interpolate are different modes; pick one", param="grid")
    if grid:
        check_positive("grid_size", grid_size)
    if interpolate:
        check_positive("steps", steps)
    out = Path(out)
    prefix, count = ("grid", grid_size**2) if grid else ("interp", steps) if interpolate else ("sample", n)
    names = image_names(prefix, count, fmt)
    settings = {"model": str(Path(model_path).resolve()), "mode": prefix, "count": count, "format": fmt,
                "seed": seed, "grid_range": grid_range if grid else None,
                "interpolate": [str(Path(p).resolve()) for p in interpolate] if interpolate else None}
    keep = set() if overwrite else _resumable(out, names, settings)
    if not overwrite and not keep and any(_written(out / name) for name in (*names, CONTACT_SHEET)):
        raise OutputExists(out, "image set")
    model, info = load_model(model_path, device=str(resolve_device(device)))
    if info.kind == "cvae_gan":
        raise UsageError(f"{model_path}: a class-conditional model draws a class: use 'medvae oversample "
                         f"{Path(model_path).name} --class NAME --n N'", param="model")
    model.eval()
    spatial_dims = len(getattr(model.config, "in_shape", (1, 28, 28))) - 1
    if fmt == "png" and spatial_dims == 3:
        raise UsageError("format png cannot hold the volumes this model makes; use --format nii or dcm", param="format")
    with torch.no_grad():
        if grid:
            images = _grid(model, grid_size, grid_range)
        elif interpolate:
            images = _interpolate(model, info, interpolate, steps)
        else:
            z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
            images = model.generate(z.to(next(model.parameters()).device))
    images = images.float().cpu().numpy()
    if "axes" not in info.preprocessing:  # the MNIST demo's models work on (rows, cols): make them (x, y)
        images = np.swapaxes(images.reshape(len(images), 1, 28, 28), -1, -2)
    from medvae.io.atomic import write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_MARKER, settings)  # until the contact sheet is written: a killed run can be resumed
    files = write_images(images, out, fmt, names, info, keep, deidentify)
    _remove_stale(out, prefix, fmt, names)
    from medvae.viz import contact_sheet, display_slices

    ncols = grid_size if grid else min(len(images), 8)
    sheet = out / CONTACT_SHEET
    contact_sheet(display_slices(images), sheet, ncols=ncols)
    (out / RUN_MARKER).unlink(missing_ok=True)
    return GenerateResult(files, sheet, resumed=len(keep))


def _resumable(out: Path, names: list[str], settings: dict) -> set[str]:
    """The images of an interrupted run (its marker there, with these settings, and no contact sheet) to keep."""
    import json

    try:
        earlier = json.loads((out / RUN_MARKER).read_text())
    except (OSError, ValueError):
        return set()
    if earlier != settings or _written(out / CONTACT_SHEET):
        return set()
    return {name for name in names if _written(out / name)}


CONTACT_SHEET = "contact_sheet.png"
SUFFIXES = {"png": ".png", "nifti": ".nii.gz", "dicom": ".dcm"}


def image_names(prefix: str, count: int, fmt: str) -> list[str]:
    """The files one run writes: ``sample_0001.png``, ... (``grid_``, ``interp_`` for those modes)."""
    width = max(4, len(str(count)))
    return [f"{prefix}_{i + 1:0{width}d}{SUFFIXES[fmt]}" for i in range(count)]


def _written(path: Path) -> bool:
    """Whether ``path`` is there (a DICOM volume is written as the series folder named without ``.dcm``)."""
    return path.exists() or (path.suffix == ".dcm" and path.with_suffix("").is_dir())


def _remove_stale(out: Path, prefix: str, fmt: str, names: list[str]) -> None:
    """After an ``overwrite``: images of the same mode and format left by an earlier, larger run go, so the
    folder holds what the contact sheet shows."""
    import re

    pattern = re.compile(rf"{prefix}_\d+{re.escape(SUFFIXES[fmt])}")
    for path in out.iterdir():
        if path.is_file() and pattern.fullmatch(path.name) and path.name not in names:
            path.unlink()


def _grid(model, size: int, extent: float):
    import torch

    if model.latent_dim != 2:
        raise UsageError(f"grid needs a model with a 2-D latent space; this one has latent_dim {model.latent_dim} "
                         "(train with --latent-dim 2)", param="grid")
    check_positive("grid_size", size)
    values = torch.linspace(extent, -extent, size)
    z = torch.stack([torch.stack([torch.linspace(-extent, extent, size)[j], values[i]])
                     for i in range(size) for j in range(size)])
    return model.generate(z.to(next(model.parameters()).device))


def _interpolate(model, info, paths, steps: int):
    import torch

    from medvae.data.intensity import trained_normalize
    from medvae.data.transforms import prepare
    from medvae.io.images import read_image

    size = info.preprocessing.get("size")
    if not size:
        raise UsageError(f"{info.path}: the model file does not record its image size; cannot encode images")
    normalize = trained_normalize(info.preprocessing)
    xs = []
    for p in paths:
        image = read_image(p)
        if image.array.ndim == len(size) + 1 and image.array.shape[-1] == 1:
            image = image.with_array(image.array[..., 0])
        xs.append(prepare(image, size, normalize=normalize).tensor.as_tensor())
    x = torch.stack(xs).to(next(model.parameters()).device)
    mu, _ = model.encode(x)
    t = torch.linspace(0, 1, steps, device=mu.device)[:, None]
    return model.generate((1 - t) * mu[0] + t * mu[1])


def write_images(images: np.ndarray, out: Path, fmt: str, names: list[str], info, keep: set[str] = frozenset(),
               deidentify: bool = False) -> list[Path]:
    """Write each image under its name (those in ``keep`` are there already, from an interrupted run)."""
    from medvae.data.intensity import to_display
    from medvae.io.images import Image, write_image

    out.mkdir(parents=True, exist_ok=True)
    spacing = info.preprocessing.get("spacing")  # None: the training files gave no pixel size
    if info.preprocessing.get("pipeline") == "mnist":  # older MNIST models stored an invented 1 x 1 mm
        spacing = None
    known = spacing is not None
    spacing = spacing or [1.0] * (images.ndim - 2)
    affine = np.diag([*map(float, spacing), 1.0] + [1.0] * (3 - len(spacing)))[:4, :4]  # RAS, as trained
    notes = [f"synthetic image generated by medvae from {Path(info.path).name}"]
    files = []
    for img, name in zip(images, names):
        if name in keep:
            files.append(out / name if fmt != "dicom" or (out / name).exists() else (out / name).with_suffix(""))
            continue
        array = img[0]
        if fmt == "png":
            image = Image(array=to_display(array, 0.0, 1.0, 8), format="png", bits=8, notes=list(notes))
        else:
            image = Image(array=array.astype(np.float32), affine=affine, format="nifti", spacing_known=known,
                          notes=list(notes))
        # an existing file here is one ``generate`` checked before it started: ``overwrite`` was given
        files.append(write_image(image, out / name, operation="generate", synthetic=True, overwrite=True,
                                 deidentify=deidentify))
    return files
