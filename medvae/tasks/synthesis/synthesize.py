"""``medvae synthesize MODEL``: the missing modality, as the mean of K samples, with a per-voxel spread.

Inputs:

* a file or a DICOM series folder: the one source modality (models with one source);
* a subject folder holding each source (``t1.nii.gz``, ``sub_t1.nii.gz``, a ``t1/`` DICOM folder, ...);
* a folder of subject folders: each is synthesised into ``OUT/<subject>/<target><suffix>`` with its spread
  beside it as ``<target>_std<suffix>``, through the batch runner (a failing subject does not stop the rest).

Outputs keep the first source's grid (shape, affine, NIfTI header) and format: NIfTI in, NIfTI out; DICOM
in, a derived DICOM series out, marked synthetic. The output is the mean over ``samples`` draws of the latent
from the model's prior p(z | sources); the uncertainty is the standard deviation of the predictive
distribution: the spread of those draws plus the noise the model predicts per voxel (law of total variance,
:func:`medvae.models.synthesis.predictive_moments`). Values are in the training target's units.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError, check_positive


@dataclass
class Synthesis:
    """One subject's result on its own grid: ``mean`` and ``std`` ``(x, y, z)``, and the source image it follows."""

    mean: np.ndarray
    std: np.ndarray
    reference: object
    samples: int = 1


def sample_on_grid(model, source, samples: int, seed: int, patch_size: int | None = None, batch_size: int = 16):
    """``samples`` draws over a whole volume on the model's grid: ``source`` ``(S, X, Y, Z)`` → ``(K, C, X, Y, Z)``
    (channel 0 the mean, channel 1 if any the log Laplace scale; see :func:`predictive_moments`).

    2-D models run over the axial slices in batches; 3-D models through MONAI's ``sliding_window_inference``
    over patches of the training size (Gaussian-weighted overlap of 25 %).
    """
    import torch

    device = next(model.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    x = torch.as_tensor(np.asarray(source), dtype=torch.float32)
    g = model.generator
    with torch.no_grad():
        if model.config.spatial_dims == 2:
            slices = x.permute(3, 0, 1, 2)  # (Z, S, X, Y)
            out = [g.sample(slices[i:i + batch_size].to(device), samples, generator=gen).float().cpu()
                   for i in range(0, len(slices), batch_size)]
            return torch.cat(out, dim=1).permute(0, 2, 3, 4, 1).numpy()  # (K, Z, C, X, Y) → (K, C, X, Y, Z)
        from monai.inferers import sliding_window_inference

        patch = [min(s, patch_size or s) for s in x.shape[1:]]
        draws = [sliding_window_inference(x[None].to(device), patch, 4, lambda p: g.sample(p, 1, generator=gen)[0],
                                          overlap=0.25, mode="gaussian")[0].float().cpu()
                 for _ in range(samples)]
        return torch.stack(draws).numpy()


def synthesize_subject(model, info, images: dict, samples: int = 16, seed: int = 0) -> Synthesis:
    """Synthesise the target for one subject's ``{source: Image}``, back on the first source's grid."""
    from medvae.data.paired import prepare_subject, restore_grid

    pre = info.preprocessing
    grid = dict(spacing=pre["spacing"], multiple=pre["multiple"], spatial_dims=pre["spatial_dims"])
    prepared = prepare_subject(images, pre["sources"], **grid)
    import torch

    from medvae.models.synthesis import predictive_moments

    draws = sample_on_grid(model, prepared.source.as_tensor(), samples, seed, pre.get("patch_size"))
    mean, std = (v.numpy() * pre["target_scale"] for v in predictive_moments(torch.from_numpy(draws)[:, None]))
    back = restore_grid(np.stack([mean[0], std[0]]), prepared)
    return Synthesis(mean=back[0], std=np.clip(back[1], 0, None), reference=prepared.reference, samples=samples)


def read_sources(path: Path, sources: list[str]) -> dict:
    """``{source: Image}`` from a file / DICOM series folder (one source) or a subject folder."""
    from medvae.io.images import read_image
    from medvae.data.paired import is_subject, read_subject, subject_files

    if path.is_dir() and is_subject(path, sources):
        return read_subject(subject_files(path, sources, required=sources), sources)
    if len(sources) > 1:
        raise InputError(f"{path}: this model needs {', '.join(sources)}; pass a subject folder holding "
                         f"each ({sources[0]}.nii.gz, ...)")
    image = read_image(path)
    if image.array.ndim == 2:
        image = image.with_array(image.array[:, :, None])
    return {sources[0]: image}


def write_synthesis(result: Synthesis, info, out: Path, uncertainty: Path | None, overwrite: bool) -> list[Path]:
    """Write the mean (and the spread) in the reference's grid and header, marked synthetic."""
    from medvae.io.images import format_from_suffix, write_image

    pre = info.preprocessing
    operation = f"synthesize {pre['target']} from {'+'.join(pre['sources'])}"
    written = []
    for array, path, what in ((result.mean, out, operation), (result.std, uncertainty, f"{operation}, std")):
        if path is None:
            continue
        fmt = format_from_suffix(path)
        if fmt not in ("nifti", "dicom", "npy"):
            name = "output" if path == out else "uncertainty"
            raise UsageError(f"{name} {path}: synthesis writes volumes; name it .nii.gz, .nii, .dcm or .npy", param=name)
        image = result.reference.with_array(array.astype(np.float32))
        image.notes = [*result.reference.notes, f"medvae {what} ({result.samples} samples)"]
        written.append(write_image(image, path, operation=what, synthetic=True, overwrite=overwrite))
    return written


def synthesize(model_path: str | os.PathLike, input: str | os.PathLike, output: str | os.PathLike, *,
               samples: int = 16, uncertainty: str | os.PathLike | None = None, seed: int = 0,
               device: str = "auto", overwrite: bool = False, progress: bool = True):
    """Synthesise the model's target for one input or a folder of subjects.

    Args:
        model_path: a model file from ``medvae train synthesis``.
        input: a file, a DICOM series folder, a subject folder, or a folder of subject folders.
        output: the output file (its suffix picks the format: ``.nii.gz``, ``.dcm`` for a DICOM series), or
            for a folder of subjects the output folder (mirroring the input's subject folders).
        samples: latent draws; their mean is the output; their spread and the predicted noise give the
            uncertainty (its standard deviation).
        uncertainty: where to write the standard deviation map for a single input (a folder of subjects
            always gets ``<target>_std`` files).
        seed: fixes the draws.
        overwrite: redo outputs that exist (otherwise they are skipped and listed in the report).

    Returns:
        a :class:`medvae.io.batch.BatchReport`.
    """
    from medvae.io.batch import BatchReport, run_batch
    from medvae.io.images import format_from_suffix
    from medvae.data.paired import is_subject
    from medvae.checkpoint import load_model_of_kind
    from medvae.train import resolve_device

    check_positive("samples", samples)
    input, out = Path(input), Path(output)
    model, info = load_model_of_kind(model_path, "synthesis", option="model", device=str(resolve_device(device)))
    pre = info.preprocessing
    sources, target = pre["sources"], pre["target"]
    if not input.exists():
        raise InputError(f"{input}: no such file or folder")
    subject_dirs = []
    if input.is_dir() and not is_subject(input, sources):
        subject_dirs = [d for d in sorted(input.iterdir()) if d.is_dir() and is_subject(d, sources)]
        if not subject_dirs and not _holds_dicom(input):
            raise InputError(f"{input}: holds no subject folders with {', '.join(sources)} images and is not "
                             "a DICOM series")

    def run_one(src: Path, dst: Path, std_path: Path | None):
        images = read_sources(src, sources)
        result = synthesize_subject(model, info, images, samples, seed)
        written = write_synthesis(result, info, dst, std_path, overwrite)
        return written[0], list(result.reference.notes)

    if not subject_dirs:  # one input
        if format_from_suffix(out) is None:
            raise UsageError(f"output {out}: name the output file, e.g. {target}.nii.gz (or {target}.dcm for DICOM)",
                             param="output")
        if uncertainty is not None and Path(uncertainty).resolve() == out.resolve():
            raise UsageError("uncertainty must be a different file from the output", param="uncertainty")
        report = BatchReport()
        if _exists(out) and not overwrite:
            report.skipped.append((input, out))
            return report
        written, notes = run_one(input, out, Path(uncertainty) if uncertainty else None)
        report.done.append((input, written))
        report.notes += [(input, n) for n in notes]
        return report
    if format_from_suffix(out) is not None:
        raise UsageError(f"output {out}: the input is a folder of subjects, so give an output folder",
                         param="output")
    if uncertainty is not None:
        raise UsageError(f"uncertainty is not used for a folder of subjects (each gets {target}_std beside its "
                         "output); drop it", param="uncertainty")
    suffix = ".dcm" if _dicom_subjects(subject_dirs, sources[0]) else ".nii.gz"
    return run_batch(subject_dirs, input, out, lambda src, dst: run_one(src, dst, _std_path(dst, suffix)),
                     suffix=f"/{target}{suffix}", overwrite=overwrite, progress=progress, desc="synthesising")


def _dicom_subjects(folders: list[Path], source: str) -> bool:
    """Whether the first subject holding ``source`` holds it as DICOM (a file or a series folder)."""
    from medvae.io.images import format_from_suffix
    from medvae.data.paired import modality_entries

    for folder in folders:
        entries = modality_entries(folder, source)
        if entries:
            return entries[0].is_dir() or format_from_suffix(entries[0]) == "dicom"
    return False


def _std_path(dst: Path, suffix: str) -> Path:
    name = dst.name[: -len(suffix)] if dst.name.endswith(suffix) else dst.stem
    return dst.with_name(f"{name}_std{suffix}")


def _exists(path: Path) -> bool:
    return path.exists() or (path.suffix.lower() == ".dcm" and path.with_suffix("").is_dir())


def _holds_dicom(folder: Path) -> bool:
    from medvae.io.images import dicom_files_in

    try:
        return bool(dicom_files_in(folder))
    except Exception:
        return False
