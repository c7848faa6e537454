"""Which patient each image belongs to, and splits that keep a patient's images together.

Films of one patient look alike (same anatomy, same machine): a split by image lets a model meet its test
patients in training and flatters it. Data sets list the patient per image in an index CSV (the NIH
ChestX-ray14 ``Data_Entry`` table, the ``index.csv`` of the shared lung set); :func:`read_patient_index`
reads any such table, and :func:`patient_folds` / :func:`patient_split` split by patient. An image the
table does not name counts as a patient of its own.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError

#: column names taken as the image's file and as its patient (compared without case, spaces or ``_``)
IMAGE_COLUMNS = ("image", "imageindex", "file", "filename", "path", "name")
PATIENT_COLUMNS = ("patientid", "patient", "subject", "subjectid", "participantid")
INDEX_NAME = "index.csv"


def _key(column: str) -> str:
    return column.lower().replace("_", "").replace(" ", "").replace("-", "")


def read_patient_index(path: str | os.PathLike) -> dict[str, str]:
    """``{image file name: patient id}`` from a CSV with an image column and a patient column.

    Image entries may be paths (``images/a.png``): only the file name counts, so the table matches the files
    wherever they lie. Raises :class:`InputError` naming the file when either column is missing.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = {_key(c): c for c in reader.fieldnames or []}
            image = next((columns[c] for c in IMAGE_COLUMNS if c in columns), None)
            patient = next((columns[c] for c in PATIENT_COLUMNS if c in columns), None)
            if image is None or patient is None:
                raise InputError(f"{path}: needs an image column ({', '.join(IMAGE_COLUMNS)}) and a patient "
                                 f"column ({', '.join(PATIENT_COLUMNS)}); found {', '.join(columns.values())}")
            return {Path(row[image]).name: row[patient].strip() for row in reader if row.get(image)}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot be read as a patient index ({type(e).__name__})") from None


def find_patient_index(folder: str | os.PathLike) -> Path | None:
    """The ``index.csv`` in ``folder`` or its parent (a data set's ``images/`` folder sits beside it), if any."""
    folder = Path(folder)
    folder = folder if folder.is_dir() else folder.parent
    for candidate in (folder / INDEX_NAME, folder.parent / INDEX_NAME):
        if candidate.is_file():
            return candidate
    return None


def patients_of(paths: list[Path], index: str | os.PathLike | None, search: str | os.PathLike | None = None
                ) -> tuple[list[str], Path | None]:
    """The patient of each path, from ``index`` (or the ``index.csv`` found at ``search``), and the table used.

    Paths the table does not name, or all of them when there is no table, are each their own patient.
    """
    table_path = Path(index) if index is not None else (find_patient_index(search) if search is not None else None)
    table = read_patient_index(table_path) if table_path is not None else {}
    return [table.get(p.name, f"image:{p.name}") for p in paths], table_path


def patient_folds(patients: list[str], folds: int, seed: int) -> np.ndarray:
    """The fold (0 .. ``folds - 1``) of each item, all of a patient's items in one fold.

    Patients are shuffled by ``seed`` and dealt, the ones with most images first, to the fold that holds
    the fewest images so far, so folds are near equal in images as well as in patients.
    """
    unique = sorted(set(patients))
    if folds < 2 or folds > len(unique):
        raise UsageError(f"folds must be between 2 and the number of patients ({len(unique)}), got {folds}", param="folds")
    counts = {p: patients.count(p) for p in unique}
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    order.sort(key=lambda p: -counts[p])  # stable: the shuffle breaks ties
    load, fold_of = [0] * folds, {}
    for p in order:
        f = int(np.argmin(load))
        fold_of[p] = f
        load[f] += counts[p]
    return np.array([fold_of[p] for p in patients], dtype=int)


def patient_split(patients: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, test indices)`` with about ``fraction`` of the items held out, whole patients only
    (at least one patient on each side)."""
    unique = sorted(set(patients))
    if len(unique) < 2:
        raise UsageError(f"data: need images of at least 2 patients to hold one out, found {len(unique)}", param="data")
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    target, held, n = fraction * len(patients), set(), 0
    for p in order[:-1]:  # never every patient
        c = patients.count(p)
        if held and n + c - target > target - n:  # the next patient takes the count further from the target
            break
        held.add(p)
        n += c
    test = np.array([i for i, p in enumerate(patients) if p in held], dtype=int)
    train = np.array([i for i, p in enumerate(patients) if p not in held], dtype=int)
    return train, test


def fold_split(patients: list[str], folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, test indices)`` for fold ``fold`` of a patient-level ``folds``-fold split."""
    if not 0 <= fold < folds:
        raise UsageError(f"fold must be between 0 and folds - 1 ({folds - 1}), got {fold}", param="fold")
    assigned = patient_folds(patients, folds, seed)
    return np.flatnonzero(assigned != fold), np.flatnonzero(assigned == fold)


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded held-out split: ``(train indices, validation indices)``, at least one of each."""
    if n < 2:
        raise UsageError(f"data: need at least 2 images to hold one out for validation, found {n}", param="data")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * fraction)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
