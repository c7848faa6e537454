"""The batch runner: discovery, mirrored outputs, skipping, failures that do not stop the run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image as PILImage

from medvae.io.batch import discover, output_for, run_batch, strip_suffix
from medvae.errors import InputError, UsageError


@pytest.fixture
def tree(tmp_path, sample_dir):
    """in/a.png, in/sub/b.png, in/sub/deeper/scan (a DICOM without suffix), in/.hidden.png, in/readme.txt."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    PILImage.fromarray(np.zeros((4, 5), np.uint8)).save(root / "a.png")
    PILImage.fromarray(np.ones((4, 5), np.uint8)).save(root / "sub" / "b.png")
    shutil.copy(sample_dir / "dicom" / "extremity_cr.dcm", root / "sub" / "deeper" / "scan")
    PILImage.fromarray(np.ones((4, 5), np.uint8)).save(root / ".hidden.png")
    (root / "readme.txt").write_text("not an image")
    return root


def copy_process(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes()[:10])
    return dst, [f"copied {src.name}"]


def test_discover_finds_images_recursively_and_dicom_by_content(tree):
    found = [p.relative_to(tree).as_posix() for p in discover(tree)]
    assert found == ["a.png", "sub/b.png", "sub/deeper/scan"]


def test_discover_series_groups_dicom_folders(tree, sample_dir):
    shutil.copytree(sample_dir / "dicom" / "ct_series", tree / "ct")
    found = [p.relative_to(tree).as_posix() for p in discover(tree, series=True)]
    assert found == ["a.png", "ct", "sub/b.png", "sub/deeper"]


def test_outputs_mirror_the_input_tree(tree, tmp_path):
    out = tmp_path / "out"
    report = run_batch(discover(tree), tree, out, copy_process, suffix=".x", progress=False)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.x", "sub/b.x", "sub/deeper/scan.x"]
    assert report.exit_code == 0 and len(report.done) == 3 and report.notes[0][1] == "copied a.png"


def test_existing_outputs_are_skipped_unless_overwrite(tree, tmp_path):
    out = tmp_path / "out"
    run_batch(discover(tree), tree, out, copy_process, suffix=".x", progress=False)
    (out / "a.x").write_text("keep me")
    again = run_batch(discover(tree), tree, out, copy_process, suffix=".x", progress=False)
    assert len(again.skipped) == 3 and not again.done and (out / "a.x").read_text() == "keep me"
    assert "skipped 3" in again.summary()
    redo = run_batch(discover(tree), tree, out, copy_process, suffix=".x", progress=False, overwrite=True)
    assert len(redo.done) == 3 and (out / "a.x").read_bytes() != b"keep me"


def test_a_failure_does_not_stop_the_batch(tree, tmp_path):
    def process(src, dst):
        if src.name == "b.png":
            raise InputError(f"{src}: is broken in some way")
        return copy_process(src, dst)

    report = run_batch(discover(tree), tree, tmp_path / "out", process, suffix=".x", progress=False)
    assert report.exit_code == 1 and len(report.done) == 2
    assert report.failed == [(tree / "sub" / "b.png", "is broken in some way")]
    assert f"  {tree / 'sub' / 'b.png'}: is broken in some way" in report.summary().splitlines()


def test_unexpected_errors_are_reported_with_their_type(tree, tmp_path):
    def process(src, dst):
        raise ZeroDivisionError("division by zero")

    report = run_batch(discover(tree), tree, tmp_path / "out", process, suffix=".x", progress=False)
    assert report.failed[0][1] == "ZeroDivisionError: division by zero" and len(report.failed) == 3


def test_never_writes_into_the_input_folder(tree):
    for out in (tree, tree / "sub" / "out"):
        with pytest.raises(UsageError, match="never writes into its inputs"):
            run_batch(discover(tree), tree, out, copy_process, suffix=".x", progress=False)


def test_outputs_that_would_clash_fail_the_second_input(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("x.png", "x.tif"):
        PILImage.fromarray(np.zeros((3, 3), np.uint8)).save(root / name)
    report = run_batch(discover(root), root, tmp_path / "out", copy_process, suffix=".nii.gz", progress=False)
    assert len(report.done) == 1 and "would overwrite the output of" in report.failed[0][1]


def test_empty_and_missing_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files found"):
        run_batch(discover(tmp_path / "empty"), tmp_path / "empty", tmp_path / "out", copy_process, suffix=".x")
    with pytest.raises(InputError, match="no such file"):
        discover(tmp_path / "missing")


def test_names():
    assert strip_suffix("scan.nii.gz") == "scan" and strip_suffix("IM0001") == "IM0001"
    assert strip_suffix("a.b.PNG") == "a.b"
    from pathlib import Path

    assert output_for(Path("/i/s/x.dcm"), Path("/i"), Path("/o"), ".png") == Path("/o/s/x.png")
