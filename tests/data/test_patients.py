"""Patient tables and patient-level splits (medvae.data.patients)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medvae.data.patients import (fold_split, find_patient_index, patient_folds, patient_split, patients_of,
                                  read_patient_index)
from medvae.errors import InputError, UsageError

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
#: 10 patients with 1, 2 or 3 images each (25 images)
PATIENTS = [f"p{i}" for i in range(10) for _ in range(1 + i % 3)]


def test_reads_the_sample_lung_index_by_file_name():
    table = read_patient_index(SAMPLE / "cxr/index.csv")
    assert len(table) == 8 and table["53c9be49.png"] == table["b343e657.png"] == "219"


@pytest.mark.parametrize("header", ["Image Index,Patient ID", "file,subject_id", "image,patient"])
def test_column_names_vary(tmp_path, header):
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\nimages/a.png,7\nb.png,8\n")
    assert read_patient_index(path) == {"a.png": "7", "b.png": "8"}


def test_a_table_without_a_patient_column_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("image,label\na.png,1\n")
    with pytest.raises(InputError, match="t.csv: needs an image column .* and a patient column"):
        read_patient_index(path)


def test_index_is_found_beside_the_images_folder_and_unnamed_images_are_their_own_patients(tmp_path):
    assert find_patient_index(SAMPLE / "cxr/images") == SAMPLE / "cxr/index.csv"
    assert find_patient_index(tmp_path) is None
    patients, table = patients_of([Path("53c9be49.png"), Path("zzz.png")], None, SAMPLE / "cxr/images")
    assert patients == ["219", "image:zzz.png"] and table == SAMPLE / "cxr/index.csv"


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_folds_keep_patients_together_and_balance_images(folds):
    assigned = patient_folds(PATIENTS, folds, seed=0)
    for p in set(PATIENTS):
        assert len({assigned[i] for i, q in enumerate(PATIENTS) if q == p}) == 1
    counts = np.bincount(assigned, minlength=folds)
    assert counts.sum() == len(PATIENTS) and counts.max() - counts.min() <= 3
    assert not np.array_equal(assigned, patient_folds(PATIENTS, folds, seed=1)) or folds == 2


def test_fold_split_covers_every_image_once():
    tests = [fold_split(PATIENTS, 3, f, seed=0)[1] for f in range(3)]
    assert sorted(np.concatenate(tests).tolist()) == list(range(len(PATIENTS)))
    train, test = fold_split(PATIENTS, 3, 0, seed=0)
    assert not {PATIENTS[i] for i in train} & {PATIENTS[i] for i in test}


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_patient_split_holds_out_whole_patients_near_the_fraction(fraction):
    train, test = patient_split(PATIENTS, fraction, seed=0)
    assert not {PATIENTS[i] for i in train} & {PATIENTS[i] for i in test}
    assert len(train) + len(test) == len(PATIENTS) and len(test) >= 1 and len(train) >= 1
    assert abs(len(test) - fraction * len(PATIENTS)) <= 3  # a patient has at most 3 images


@pytest.mark.parametrize("call, message", [
    (lambda: patient_folds(PATIENTS, 1, 0), "folds must be between 2 and the number of patients"),
    (lambda: patient_folds(PATIENTS, 11, 0), r"folds must be between 2 and the number of patients \(10\)"),
    (lambda: fold_split(PATIENTS, 3, 3, 0), r"fold must be between 0 and folds - 1 \(2\)"),
    (lambda: patient_split(["a", "a"], 0.5, 0), "at least 2 patients"),
])
def test_errors_name_the_parameter(call, message):
    with pytest.raises(UsageError, match=message):
        call()
