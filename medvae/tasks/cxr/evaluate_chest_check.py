"""``medvae evaluate chest-check``: how often the "not a frontal chest film" check is right.

Two sets of images: chest films of patients the segmenter neither trained on nor calibrated its check on (the
false-alarm rate: the share flagged), and images that are not frontal chest films (the detection rate: the
share flagged), each through :func:`medvae.tasks.cxr.chest_check.check_image` exactly as ``segment`` and
``enhance`` run it. A volume is checked on its middle slice, a colour image on its mean over channels.
Patients come from an index CSV beside each chest folder (:mod:`medvae.data.patients`); films of a patient
whose films trained or calibrated the model are left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import UsageError, first_line


@dataclass
class CheckEvaluation:
    """Per image: ``(path, flagged, reasons, features)``, for chest films and for the others."""

    chest: list[tuple[str, bool, list[str], dict]] = field(default_factory=list)
    other: list[tuple[str, bool, list[str], dict]] = field(default_factory=list)
    ranges: dict = field(default_factory=dict)
    left_out: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @staticmethod
    def rate(rows) -> float:
        return float(np.mean([r[1] for r in rows])) if rows else float("nan")

    def to_dict(self) -> dict:
        def rows(items):
            return [{"image": p, "flagged": f, "reasons": r, "features": v} for p, f, r, v in items]

        return {"ranges": self.ranges, "false_alarm_rate": self.rate(self.chest),
                "detection_rate": self.rate(self.other), "chest_left_out": self.left_out, "unreadable": self.unreadable,
                "chest": rows(self.chest), "other": rows(self.other)}


def as_slice(array: np.ndarray) -> np.ndarray:
    """A 2-D grey image from what :func:`medvae.io.images.read_image` returns (middle slice, channel mean)."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 3 and a.shape[2] in (3, 4) and min(a.shape[:2]) > 4:
        a = a[..., :3].mean(axis=2)  # colour
    while a.ndim > 2:
        a = a[..., a.shape[-1] // 2] if a.shape[-1] > 1 else a[..., 0]
    return a


def seen_patients(info, paths: list[Path], patients: list[str]) -> set[str]:
    """The patients (of ``paths``, by ``patients``) whose films trained or calibrated the model."""
    used = {Path(p).name for p in (info.training or {}).get("train_images", [])}
    used |= set((info.preprocessing.get("chest_check") or {}).get("calibration_images", []))
    return {patient for p, patient in zip(paths, patients) if p.name in used}


def evaluate_chest_check(model: str | os.PathLike | None, chest: list[str], other: list[str], *,
                         limit: int | None = None, progress: bool = True,
                         device: str = "auto") -> CheckEvaluation:
    """Run the chest check on ``chest`` folders' unseen films and on the ``other`` images (see the module
    docstring)."""
    from tqdm.auto import tqdm

    from medvae.train import resolve_device

    from medvae.io.batch import discover
    from medvae.io.images import read_image
    from medvae.data.patients import patients_of
    from medvae.tasks.cxr.chest_check import check_image, ranges_of
    from medvae.data.intensity import to_unit
    from medvae.checkpoint import load_model_of_kind

    net, info = load_model_of_kind(model, "segmenter", option="model", device=str(resolve_device(device)))
    if ranges_of(info) is None:
        raise UsageError(f"model {info.path}: has no chest check; train it with this medvae version", param="model")
    result = CheckEvaluation(ranges=ranges_of(info))
    chest_paths = []
    for folder in map(Path, chest):
        paths = discover(folder)
        patients, _ = patients_of(paths, None, folder)
        seen = seen_patients(info, paths, patients)
        kept = [p for p, patient in zip(paths, patients) if patient not in seen]
        result.left_out += len(paths) - len(kept)
        chest_paths += kept[:limit]
    other_paths = [p for d in other for p in discover(d)]
    for target, paths in ((result.chest, chest_paths), (result.other, other_paths)):
        for path in tqdm(paths, desc="checking", disable=not progress, leave=False):
            try:
                array = as_slice(read_image(path).array)
            except Exception as e:  # an unreadable file is not a result: listed, not scored
                result.unreadable.append((str(path), first_line(e)))
                continue
            verdict = check_image(net, info, to_unit(array)[0])
            target.append((str(path), not verdict.ok, verdict.reasons, verdict.values))
    return result


def format_check(ev: CheckEvaluation) -> str:
    from medvae.errors import count

    lines = ["accepted ranges: " + ", ".join(f"{k} {lo:.3f}..{hi:.3f}" for k, (lo, hi) in ev.ranges.items()), "",
             "| images | n | flagged |", "|---|---:|---:|",
             f"| chest films of unseen patients (false alarms) | {len(ev.chest)} | {ev.rate(ev.chest):.1%} |",
             f"| not frontal chest films (detections) | {len(ev.other)} | {ev.rate(ev.other):.1%} |", "",
             f"({count(ev.left_out, 'chest film')} of patients the model trained or calibrated on "
             f"{'was' if ev.left_out == 1 else 'were'} left out)", ""]
    lines += [f"not read: {Path(p).name} ({why})" for p, why in ev.unreadable]
    missed = [r for r in ev.other if not r[1]]
    if missed:
        lines.append("not detected: " + ", ".join(Path(p).name for p, *_ in missed))
    alarms = [r for r in ev.chest if r[1]]
    if alarms:
        lines.append("false alarms: " + ", ".join(f"{Path(p).name} ({'; '.join(r)})" for p, _, r, _ in alarms))
    return "\n".join(lines)
