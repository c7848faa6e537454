"""Hostile inputs, tried as a careful attacker and a clumsy user would, through the commands that read them.

Every case is one family of bad input (malformed model metadata, truncated or lying DICOM headers, patient
values in bad attributes, non-finite pixels, odd file names, odd entries in an input tree, size bombs) run
through each command that reads it. Whatever the command decides (refuse, skip, note), the same invariants
hold for every case:

- no traceback and no raw Python warning reach the user (without ``--debug``);
- a failure is exit code 1 (a failed input) or 2 (bad usage), and its last stderr line is one ``error:`` line;
- no marker value planted in a patient's header appears anywhere in the output, with or without ``--debug``;
- no input is changed, and no medvae temporary file (``*.part*``) is left behind.

The per-defect regression tests live beside this file; this one keeps the families honest as commands change.
Small fixtures only: the whole file runs in well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import csv
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medvae_cli.main import app

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402

runner = CliRunner()
MARKER = "ZZMARK4711"
SAMPLE_FILM = Path(__file__).resolve().parents[2] / "sample_data" / "cxr" / "images" / "2168a917.png"


def _tree_digest(root: Path) -> dict[str, str]:
    """Every regular file under ``root`` and its content hash (links are not followed)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _invoke(args: list[str], inputs: Path, outputs: Path | None = None, debug: bool = False):
    """Run one command and check the invariants every hostile input must keep; return the result."""
    before = _tree_digest(inputs)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:  # what the user's terminal would show
            warnings.simplefilter("default")
            result = runner.invoke(app, (["--debug"] if debug else []) + [str(a) for a in args])
    finally:
        logging.getLogger().removeHandler(handler)
    shown = [str(w.message) for w in caught]  # a raw warning would reach the terminal
    logged = [r.getMessage() for r in records]  # a log record reaches it only where a user configured logging
    text = result.stdout + result.stderr + "\n".join(shown + logged)
    assert MARKER not in text, f"{args}: a header value reached the output"
    if not debug:
        assert "Traceback" not in text and not shown, f"{args}: {shown or text[-2000:]}"
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, text[-2000:])
        if result.exit_code:
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith("error: "), (args, result.stderr)
    assert _tree_digest(inputs) == before, f"{args}: an input changed"
    for root in filter(None, (inputs, outputs)):
        if root.exists():
            left = [p.name for p in root.rglob("*") if ".part" in p.name]
            assert not left, f"{args}: temporary files left: {left}"
    return result


# --- families of hostile files ------------------------------------------------------------------------------

def _dicom_with(path: Path, **attrs) -> Path:
    """CT_small with each attribute set to a value (None: removed), written as a careless writer would."""
    settings = pydicom.config.settings
    saved = settings.writing_validation_mode
    settings.writing_validation_mode = pydicom.config.IGNORE
    try:
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        for keyword, value in attrs.items():
            tag = pydicom.datadict.tag_for_keyword(keyword)
            if value is None:
                delattr(ds, keyword)
            elif isinstance(value, str):  # raw bytes, as a writer that never validated would leave them
                raw = value.encode() + b" " * (len(value) % 2)
                ds[tag] = pydicom.dataelem.RawDataElement(pydicom.tag.Tag(tag), pydicom.datadict.dictionary_VR(tag),
                                                          len(raw), raw, 0, ds.is_implicit_VR if hasattr(
                                                              ds, "is_implicit_VR") else False, True)
            else:
                setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    finally:
        settings.writing_validation_mode = saved
    return path


def annex_e_markers() -> dict[str, str]:
    """A marker in every text-valued attribute of PS3.15 Annex E's Basic Profile, invalid for its VR wherever the
    VR has rules (so pydicom's warnings, which quote values, are provoked): dates, times, UIDs, numbers, codes."""
    from annex_e import ANNEX_E  # tests/hardening/annex_e.py

    keep = {"SOPInstanceUID", "MediaStorageSOPInstanceUID", "SeriesInstanceUID"}  # the series is read as one
    markers = {}
    for keyword in ANNEX_E:
        tag = pydicom.datadict.tag_for_keyword(keyword)
        if tag is None or tag >> 16 in (0x0000, 0x0002) or keyword in keep:
            continue
        vr = pydicom.datadict.dictionary_VR(tag)
        if vr in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "US", "UL", "SS", "SL", "FL", "FD", "AT", "SV",
                  "UV"):
            continue
        markers[keyword] = MARKER + ("!" if vr in ("CS", "DA", "TM", "DT", "UI", "DS", "IS", "AS") else "")
    return markers


def dicom_cases(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    raw = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    cases = {}
    for n in (64, 100, 131, 400):
        cases[f"truncated-{n}"] = folder / f"truncated_{n}.dcm"
        cases[f"truncated-{n}"].write_bytes(raw[:n])
    cases["pixels-cut"] = folder / "pixels_cut.dcm"
    cases["pixels-cut"].write_bytes(raw[: len(raw) - 5000])
    lossy = Path(get_testdata_file("JPEG-lossy.dcm")).read_bytes()
    cases["jpeg-cut"] = folder / "jpeg_cut.dcm"
    cases["jpeg-cut"].write_bytes(lossy[: len(lossy) * 2 // 3])
    cases["patient-size"] = _dicom_with(folder / "patient_size.dcm", PatientSize=MARKER)
    cases["series-number"] = _dicom_with(folder / "series_number.dcm", SeriesNumber=MARKER)
    cases["annex-e"] = _dicom_with(folder / "annex_e.dcm", **annex_e_markers())
    cases["orientation-zero"] = _dicom_with(folder / "orientation_zero.dcm", ImageOrientationPatient=[0] * 6)
    cases["spacing-zero"] = _dicom_with(folder / "spacing_zero.dcm", PixelSpacing=[0, 0])
    cases["spacing-negative"] = _dicom_with(folder / "spacing_negative.dcm", PixelSpacing=[-1, 0.5])
    cases["empty"] = folder / "empty.dcm"
    cases["empty"].write_bytes(b"")
    cases["not-dicom"] = folder / "text.dcm"
    cases["not-dicom"].write_text("hello\n")
    return cases


def image_cases(folder: Path) -> dict[str, Path]:
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    cases = {}
    data = np.linspace(0, 1, 16 * 16 * 4, dtype=np.float32).reshape(16, 16, 4)
    data[3, 3, 1], data[5, 5, 2] = np.nan, np.inf
    cases["nan-nifti"] = folder / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), cases["nan-nifti"])
    cases["bad-gzip"] = folder / "bad.nii.gz"
    cases["bad-gzip"].write_bytes(b"\x1f\x8b\x08\x00garbage")
    cases["png-cut"] = folder / "cut.png"
    cases["png-cut"].write_bytes(SAMPLE_FILM.read_bytes()[:3000])
    cases["odd-name"] = folder / "-film with space.png"
    shutil.copy(SAMPLE_FILM, cases["odd-name"])
    return cases


def model_cases(folder: Path) -> dict[str, Path]:
    from safetensors.torch import save_file
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    weights = {"w": torch.zeros(2)}
    cases = {}
    for name, config in (("config-list", "[1, 2, 3]"), ("config-null", "null"), ("config-string", '"vae"'),
                         ("config-not-json", "{"), ("config-negative", json.dumps({"latent_dim": -5}))):
        cases[name] = folder / f"{name}.safetensors"
        save_file(weights, cases[name], metadata={"config": config, "format": "medvae"})
    cases["pickle"] = folder / "pickle.safetensors"
    torch.save({"w": torch.zeros(2)}, cases["pickle"])
    cases["empty"] = folder / "empty.safetensors"
    cases["empty"].write_bytes(b"")
    return cases


# --- the commands that read them ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return {"dicom": dicom_cases(root / "in" / "dicom"), "image": image_cases(root / "in" / "image"),
            "model": model_cases(root / "in" / "model"), "root": root}


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("family", ["dicom", "image"])
def test_info_and_convert_keep_the_invariants_on_every_hostile_file(hostile, family, debug, tmp_path):
    inputs = hostile["root"] / "in"
    for name, path in hostile[family].items():
        _invoke(["info", path], inputs, debug=debug)
        for suffix in (".png", ".nii.gz") + ((".dcm",) if family == "dicom" else ()):
            out = tmp_path / f"{name}{suffix}"
            result = _invoke(["convert", path, out], inputs, tmp_path, debug=debug)
            if not debug and result.exit_code:
                assert path.name in result.stderr, (name, result.stderr)  # the one line names the file


def test_convert_of_a_hostile_folder_finishes_the_good_files_and_names_each_bad_one(hostile, tmp_path):
    inputs = hostile["root"] / "in"
    out = tmp_path / "out"
    result = _invoke(["convert", inputs / "dicom", out, "--format", "png"], inputs, out)
    assert result.exit_code == 1
    assert "truncated_64.dcm" in result.stderr
    again = _invoke(["convert", inputs / "dicom", out, "--format", "png"], inputs, out)
    assert again.exit_code == 1  # the same files fail again; the good ones are skipped, not redone


@pytest.mark.parametrize("command", [["info"], ["generate", "{model}", "--n", "1", "--out", "{out}"]])
def test_every_malformed_model_file_is_one_line_and_exit_1(hostile, command, tmp_path):
    inputs = hostile["root"] / "in"
    for name, path in hostile["model"].items():
        args = [a.format(model=path, out=tmp_path / name) for a in (command if len(command) > 1 else
                                                                    [*command, str(path)])]
        result = _invoke(args, inputs, tmp_path)
        assert result.exit_code == 1, (name, result.stderr)
        assert path.name in result.stderr, (name, result.stderr)


def test_an_input_tree_with_links_loops_and_fifos_is_walked_and_every_odd_entry_reported(tmp_path):
    tree = tmp_path / "tree"
    (tree / "real").mkdir(parents=True)
    shutil.copy(SAMPLE_FILM, tree / "real" / "a.png")
    (tree / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "dangling.png").symlink_to(tmp_path / "missing.png")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tree / "pipe.png")
    out = tmp_path / "out"
    result = _invoke(["convert", tree, out, "--format", "nii"], tree, out)
    text = result.stdout + result.stderr
    assert result.exit_code in (0, 1)
    for odd in ("dangling.png", "pipe.png" if hasattr(os, "mkfifo") else "dangling.png"):
        assert odd in text, text
    assert any(p.name.startswith("a") for p in out.rglob("*.nii.gz"))


@pytest.mark.parametrize("command", ["enhance", "segment"])
def test_the_film_commands_keep_the_invariants_on_a_folder_of_odd_names_and_bad_files(hostile, command, tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    shutil.copy(SAMPLE_FILM, films / "plain.png")
    shutil.copy(SAMPLE_FILM, os.fsdecode(os.fsencode(str(films)) + b"/film\xff.png"))  # not UTF-8
    shutil.copy(SAMPLE_FILM, films / "-dash and space.png")
    shutil.copy(hostile["dicom"]["patient-size"], films / "patient_size.dcm")
    shutil.copy(hostile["dicom"]["truncated-100"], films / "truncated.dcm")
    out = tmp_path / "out"
    result = _invoke([command, films, out, "--device", "cpu", "--no-progress"], films, out)
    assert result.exit_code == 1, result.stderr  # the truncated file fails; every other one is done
    assert "truncated.dcm" in result.stderr
    if command == "segment":
        rows = (out / "lung_areas.csv").read_bytes().decode("utf-8", "surrogateescape").splitlines()
        names = {os.path.basename(next(csv.reader([r]))[0]) for r in rows[1:]}
        assert names == {"plain.png", "film\udcff.png", "-dash and space.png", "patient_size.dcm"}, rows
