"""``medvae synthesize MODEL``: the missing modality, as the mean of K samples, with a per-voxel spread.

Inputs:

* a file or a DICOM series folder: the one source modality (models with one source);
* a subject folder holding each source (``t1.nii.gz``, ``sub_t1.nii.gz``, a ``t1/`` DICOM folder, ...);
* a folder of subject folders: each is synthesised into ``OUT/<subject>/<target><suffix>`` with its spread
  beside it as ``<target>_std<suffix>`` and the model's part of it as ``<target>_model_std<suffix>``, through
  the batch runner (a failing subject does not stop the rest).

Outputs keep the first source's grid (shape, affine, NIfTI header) and format: NIfTI in, NIfTI out; DICOM
in, a derived DICOM series out, marked synthetic. The output is the mean over ``samples`` draws of the latent
from the model's prior p(z | sources); the uncertainty is the standard deviation of the predictive
distribution: the spread of those draws plus the noise the model predicts per voxel (law of total variance,
:func:`medvae.models.synthesis.predictive_moments`). The *model uncertainty* is the first part alone: the
standard deviation (``K - 1`` correction) over the draws of their means, what the sources leave open about
the subject, where the model may be wrong rather than the measurement noisy; it is never above the total.
A model without a latent (the deterministic L1 U-Net) has no spread over draws: its model uncertainty is 0
everywhere. Values are in the training target's units.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError, check_positive


@dataclass
class Synthesis:
    """One subject's result on its own grid: ``mean`` and ``std`` ``(x, y, z)``, and the source image it follows.

    ``model_std`` ``(x, y, z)`` is the model's part of ``std`` (the spread of the draws' means). ``draws``, kept
    on request, holds the draws ``(2, K, x, y, z)``: their means and their Laplace scales b (not the log), in
    the target's units (their spread that of ``model_std``; see :func:`synthesize_subject`); None for a model
    without predicted scales.
    """

    mean: np.ndarray
    std: np.ndarray
    reference: object
    samples: int = 1
    model_std: np.ndarray | None = None
    draws: np.ndarray | None = None


def sample_on_grid(model, source, samples: int, seed: int, patch_size: int | None = None, batch_size: int = 16,
                   progress: bool = False):
    """``samples`` draws over a whole volume on the model's grid: ``source`` ``(S, X, Y, Z)`` → ``(K, C, X, Y, Z)``
    (channel 0 the mean, channel 1 if any the log Laplace scale; see :func:`predictive_moments`).

    2-D models run over the axial slices in batches; 3-D models through MONAI's ``sliding_window_inference``
    over patches of the training size (Gaussian-weighted overlap of 25 %). ``progress``: a bar over the slice
    batches (2-D) or the draws (3-D).
    """
    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    x = torch.as_tensor(np.asarray(source), dtype=torch.float32)
    g = model.generator
    with torch.no_grad():
        if model.config.spatial_dims == 2:
            slices = x.permute(3, 0, 1, 2)  # (Z, S, X, Y)
            starts = tqdm(range(0, len(slices), batch_size), desc="synthesising slices", unit="batch",
                          disable=not progress, leave=False)
            out = [g.sample(slices[i:i + batch_size].to(device), samples, generator=gen).float().cpu() for i in starts]
            return torch.cat(out, dim=1).permute(0, 2, 3, 4, 1).numpy()  # (K, Z, C, X, Y) → (K, C, X, Y, Z)
        from monai.inferers import sliding_window_inference

        patch = [min(s, patch_size or s) for s in x.shape[1:]]
        draws = [sliding_window_inference(x[None].to(device), patch, 4, lambda p: g.sample(p, 1, generator=gen)[0],
                                          overlap=0.25, mode="gaussian")[0].float().cpu()
                 for _ in tqdm(range(samples), desc="synthesising draws", unit="draw", disable=not progress,
                               leave=False)]
        return torch.stack(draws).numpy()


def synthesize_subject(model, info, images: dict, samples: int = 16, seed: int = 0,
                       keep_draws: bool = False, progress: bool = False) -> Synthesis:
    """Synthesise the target for one subject's ``{source: Image}``, back on the first source's grid.

    The total std, the model std and (with ``keep_draws``) each draw's mean and Laplace scale are computed on
    the model's grid and moved back by the same (linear) inverse resampling as the mean, so the model std stays
    at most the total std (the two are clipped so round-off cannot break that). Moving each draw back smooths
    their spread where the model's grid is coarser than the subject's, so the kept draws' deviations from
    their mean are rescaled to the model std map's spread: the kept draws describe the predictive the maps
    describe."""
    from medvae.data.paired import prepare_subject, restore_grid

    pre = info.preprocessing
    grid = dict(spacing=pre["spacing"], multiple=pre["multiple"], spatial_dims=pre["spatial_dims"])
    prepared = prepare_subject(images, pre["sources"], **grid)
    import torch

    from medvae.models.synthesis import LOG_SCALE_RANGE, predictive_moments

    draws = sample_on_grid(model, prepared.source.as_tensor(), samples, seed, pre.get("patch_size"), progress=progress)
    scale = pre["target_scale"]
    tensor = torch.from_numpy(draws)[:, None]  # (K, 1, C, X, Y, Z)
    mean, std = (v.numpy() * scale for v in predictive_moments(tensor))
    model_std = predictive_moments(tensor[:, :, :1])[1].numpy() * scale  # the draws' means alone
    channels = [mean[0], std[0], model_std[0]]
    kept = keep_draws and draws.shape[1] > 1
    if kept:
        channels += [*(draws[:, 0] * scale), *(np.exp(np.clip(draws[:, 1], *LOG_SCALE_RANGE)) * scale)]
    back = restore_grid(np.stack(channels), prepared)
    std = np.clip(back[1], 0, None)
    model_std = np.clip(np.minimum(back[2], std), 0, None)
    kept_draws = None
    if kept:
        means, scales = back[3:3 + samples], np.clip(back[3 + samples:], 0, None)
        if samples > 1:  # interpolating each draw smooths their spread: give it the model std map's
            centre = means.mean(0)
            spread = means.std(0, ddof=1)
            means = centre + (means - centre) * np.where(spread > 0, model_std / np.where(spread > 0, spread, 1), 1)
        kept_draws = np.stack([means, scales]).astype(np.float32)
    return Synthesis(mean=back[0], std=std, model_std=model_std, reference=prepared.reference, samples=samples,
                     draws=kept_draws)


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


def check_output_names(output, uncertainty=None, model_uncertainty=None) -> None:
    """Refuse an output name that is not a volume format (before any work is done)."""
    from medvae.io.images import format_from_suffix

    for name, path in (("output", output), ("uncertainty", uncertainty), ("model_uncertainty", model_uncertainty)):
        if path is not None and format_from_suffix(Path(path)) not in ("nifti", "dicom", "npy"):
            raise UsageError(f"{name} {path}: synthesis writes volumes; name it .nii.gz, .nii, .dcm or .npy", param=name)


def write_synthesis(result: Synthesis, info, out: Path, uncertainty: Path | None, overwrite: bool,
                    model_uncertainty: Path | None = None, deidentify: bool = False) -> list[Path]:
    """Write the mean (and the spread, and the model's part of it) in the reference's grid and header, marked
    synthetic; the paths written, the mean's first."""
    from medvae.io.images import write_image

    pre = info.preprocessing
    operation = f"synthesize {pre['target']} from {'+'.join(pre['sources'])}"
    outputs = (("output", result.mean, out, operation), ("uncertainty", result.std, uncertainty, f"{operation}, std"),
               ("model_uncertainty", result.model_std, model_uncertainty, f"{operation}, model std"))
    check_output_names(out, uncertainty, model_uncertainty)  # every name checked before anything is written
    written = []
    for name, array, path, what in outputs:
        if path is None:
            continue
        image = result.reference.with_array(array.astype(np.float32))
        image.notes = [*result.reference.notes, f"medvae {what} ({result.samples} samples)"]
        written.append(write_image(image, path, operation=what, synthetic=True, overwrite=overwrite,
                                   deidentify=deidentify))
    return written


def synthesize(model_path: str | os.PathLike, input: str | os.PathLike, output: str | os.PathLike, *,
               samples: int = 16, uncertainty: str | os.PathLike | None = None,
               model_uncertainty: str | os.PathLike | None = None, seed: int = 0,
               device: str = "auto", overwrite: bool = False, progress: bool = True, deidentify: bool = False,
               shard=None):
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
        model_uncertainty: where to write the model's part of it for a single input: the standard deviation
            over the draws of their means (0 everywhere for a model without a latent, said in a note); a folder
            of subjects always gets ``<target>_model_std`` files.
        seed: fixes the draws.
        overwrite: redo outputs that exist (otherwise they are skipped and listed in the report).

    Returns:
        a :class:`medvae.io.batch.BatchReport`.
    """
    from medvae.io.batch import BatchReport, run_batch, shard_inputs
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

    deterministic = not (model.config.latent_channels or getattr(model.config, "global_latent", 0))
    zero_note = ("the model has no latent (the deterministic L1 U-Net): its draws do not differ, so its model "
                 "uncertainty is 0 everywhere")

    def run_one(src: Path, dst: Path, std_path: Path | None, model_std_path: Path | None):
        images = read_sources(src, sources)
        result = synthesize_subject(model, info, images, samples, seed, progress=progress and not subject_dirs)
        written = write_synthesis(result, info, dst, std_path, overwrite, model_std_path, deidentify)
        return written[0], [*result.reference.notes, *([zero_note] if deterministic and model_std_path else [])]

    if not subject_dirs:  # one input
        if format_from_suffix(out) is None:
            raise UsageError(f"output {out}: name the output file, e.g. {target}.nii.gz (or {target}.dcm for DICOM)",
                             param="output")
        check_output_names(out, uncertainty, model_uncertainty)
        if uncertainty is not None and Path(uncertainty).resolve() == out.resolve():
            raise UsageError("uncertainty must be a different file from the output", param="uncertainty")
        if model_uncertainty is not None and Path(model_uncertainty).resolve() in (
                out.resolve(), *([Path(uncertainty).resolve()] if uncertainty else [])):
            raise UsageError("model_uncertainty must be a different file from the output and the uncertainty",
                             param="model_uncertainty")
        report = BatchReport()
        if _exists(out) and not overwrite:
            report.skipped.append((input, out))
            return report
        written, notes = run_one(input, out, Path(uncertainty) if uncertainty else None,
                                 Path(model_uncertainty) if model_uncertainty else None)
        report.done.append((input, written))
        report.notes += [(input, n) for n in notes]
        return report
    if format_from_suffix(out) is not None:
        raise UsageError(f"output {out}: the input is a folder of subjects, so give an output folder",
                         param="output")
    if uncertainty is not None:
        raise UsageError(f"uncertainty is not used for a folder of subjects (each gets {target}_std beside its "
                         "output); drop it", param="uncertainty")
    if model_uncertainty is not None:
        raise UsageError(f"model_uncertainty is not used for a folder of subjects (each gets {target}_model_std "
                         "beside its output); drop it", param="model_uncertainty")
    suffix = ".dcm" if _dicom_subjects(subject_dirs, sources[0]) else ".nii.gz"
    subject_dirs, share = shard_inputs(subject_dirs, shard)
    report = run_batch(subject_dirs, input, out,
                       lambda src, dst: run_one(src, dst, _std_path(dst, suffix), _std_path(dst, suffix, "_model_std")),
                       suffix=f"/{target}{suffix}", overwrite=overwrite, progress=progress, desc="synthesising",
                       shard=share)
    return report


def _dicom_subjects(folders: list[Path], source: str) -> bool:
    """Whether the first subject holding ``source`` holds it as DICOM (a file or a series folder)."""
    from medvae.io.images import format_from_suffix
    from medvae.data.paired import modality_entries

    for folder in folders:
        entries = modality_entries(folder, source)
        if entries:
            return entries[0].is_dir() or format_from_suffix(entries[0]) == "dicom"
    return False


def _std_path(dst: Path, suffix: str, tag: str = "_std") -> Path:
    name = dst.name[: -len(suffix)] if dst.name.endswith(suffix) else dst.stem
    return dst.with_name(f"{name}{tag}{suffix}")


def _exists(path: Path) -> bool:
    return path.exists() or (path.suffix.lower() == ".dcm" and path.with_suffix("").is_dir())


def _holds_dicom(folder: Path) -> bool:
    from medvae.io.images import dicom_files_in

    try:
        return bool(dicom_files_in(folder))
    except Exception:
        return False
