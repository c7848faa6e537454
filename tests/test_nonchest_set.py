"""scripts/make_nonchest_set.py: the not-a-chest-film set rebuilds offline, every file readable by medvae, and an
existing folder is left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_nonchest_set.py"
pytest.importorskip("data_store", reason="needs pydicom-data (the test extra)")


def test_the_set_is_made_readable_and_an_existing_folder_is_refused(tmp_path):
    out = tmp_path / "nonchest"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    # the images the chest check has missed before are in it, and so is every group the docstring names
    assert {"RG3_UNCI.dcm", "CT_small.dcm", "mni152_t1_2mm.nii.gz", "phantom_t1.nii.gz", "photo_camera.png",
            "mnist_0_digit0.png"} <= names
    assert len(list((out / "ct_series").iterdir())) == 5 and len(files) >= 40
    assert f"{len(files)} files in {out}: {len(files)} readable by medvae, 0 not" in done.stdout
    again = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0 and "--overwrite" in again.stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(p.name for p in files)
