"""``--deidentify``: a marker value in every attribute of DICOM PS3.15 Annex E's Basic Profile (table E.1-1) that a
chest radiograph can hold must not reach any DICOM medvae writes, and the outputs stay valid DICOM."""

from __future__ import annotations

import shutil
import subprocess

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_dict, tag_for_keyword
from pydicom.dataset import Dataset
from typer.testing import CliRunner

from medvae_cli.main import app

from annex_e import ANNEX_E  # noqa: E402  (tests/hardening/annex_e.py)

MARK = "ZZMK"  # every text marker starts with it
NUMBER_MARK = "47114711"
DATE_MARK, TIME_MARK, UID_MARK = "19030303", "030303.4711", "1.2.826.0.1.4711.4711"
# where a marker would break the image (pixels, their geometry, the file meta) the attribute is left as it is
KEEP = {"MediaStorageSOPInstanceUID", "SOPInstanceUID", "DataSetTrailingPadding", "IconImageSequence", "MAC",
        "GraphicAnnotationSequence", "TimezoneOffsetFromUTC"}


def _marker(keyword: str):
    vr = dictionary_VR(keyword)
    if vr == "SQ":
        item = Dataset()
        item.PatientName, item.PatientID = f"{MARK}^SQ{keyword[:8]}", f"{MARK}SQ"
        return [item]
    return {"DA": DATE_MARK, "TM": TIME_MARK, "DT": DATE_MARK + "030303", "UI": UID_MARK, "PN": f"{MARK}^{keyword[:20]}",
            "AS": "077Y", "DS": NUMBER_MARK, "IS": NUMBER_MARK, "CS": MARK, "US": None, "UL": None, "SS": None,
            "FD": None, "FL": None, "AE": MARK}.get(vr, f"{MARK}{keyword[:12]}")  # 16 characters: fits SH


def _marked_film(tmp_path, sample_dir):
    ds = pydicom.dcmread(sample_dir / "dicom" / "chest_cr.dcm")
    marked = []
    for keyword in sorted(set(ANNEX_E) - KEEP):
        if keyword not in keyword_dict or tag_for_keyword(keyword) >> 16 in (0x0000, 0x0002):
            continue  # unknown to this pydicom, or a command or file-meta element
        value = _marker(keyword)
        if value is None:
            continue
        if keyword.endswith("UID") and keyword != "FrameOfReferenceUID":
            value = f"{UID_MARK}.{len(marked)}"
        setattr(ds, keyword, value)
        marked.append(keyword)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID_MARK + ".9"
    path = tmp_path / "marked.dcm"
    ds.save_as(path)
    return path, marked


def _leaks(path) -> list[str]:
    data = path.read_bytes()
    # times are shifted with their dates by whole hours, so a time can come back unchanged: not a marker here
    found = [m for m in (MARK, NUMBER_MARK, DATE_MARK, UID_MARK, "077Y") if m.encode() in data]
    return found


def _errors(path) -> set[str]:
    """dciodvfy's errors for ``path`` (none where dciodvfy is not installed)."""
    if not shutil.which("dciodvfy"):
        return set()
    return {line for line in subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True).stderr
            .splitlines() if line.startswith("Error")}


def test_every_basic_profile_attribute_holds_a_marker_in_the_test_film(tmp_path, sample_dir):
    path, marked = _marked_film(tmp_path, sample_dir)
    assert len(marked) > 150
    assert set(_leaks(path)) >= {MARK, NUMBER_MARK, DATE_MARK, UID_MARK}  # the check below can fail


@pytest.mark.parametrize("command", ["convert", "enhance", "segment"])
def test_no_marker_reaches_a_deidentified_output_and_it_stays_valid(tmp_path, sample_dir, command):
    film, _ = _marked_film(tmp_path, sample_dir)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(film, folder / "film.dcm")
    out = tmp_path / "out"
    args = {"convert": ["convert", folder, out, "--format", "dcm"],
            "enhance": ["enhance", folder, out, "--device", "cpu", "--no-check"],
            "segment": ["segment", folder, out, "--format", "dcm", "--device", "cpu"]}[command]
    result = CliRunner().invoke(app, [str(a) for a in args] + ["--deidentify", "--no-progress"])
    assert result.exit_code == 0, result.stderr
    kept = tmp_path / "kept"  # the same command without --deidentify: the errors the marked source itself causes
    assert CliRunner().invoke(app, [str(a) for a in args[:2]] + [str(kept)] + [str(a) for a in args[3:]]
                              + ["--no-progress"]).exit_code == 0
    written = sorted(out.rglob("*.dcm"))
    assert written
    for path in written:
        assert _leaks(path) == [], path
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert {item.CodeValue for item in ds.DeidentificationMethodCodeSequence} == {"113100", "113107"}
        assert "PatientSize" not in ds and "PatientAge" not in ds
        # a SEG copies the source's patient and study modules whole, the test's invalid marker items with them:
        # de-identifying may add no error; the other outputs have none
        assert _errors(path) <= (_errors(kept / path.relative_to(out)) if command == "segment" else set())


def test_a_deidentified_seg_of_a_clean_film_is_valid(tmp_path, sample_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(sample_dir / "dicom" / "chest_cr.dcm", folder / "film.dcm")
    result = CliRunner().invoke(app, ["segment", str(folder), str(tmp_path / "out"), "--format", "dcm", "--device",
                                      "cpu", "--deidentify", "--no-progress"])
    assert result.exit_code == 0, result.stderr
    assert _errors(tmp_path / "out" / "film.dcm") == set()


def test_without_deidentify_the_patient_stays_in_the_record(tmp_path, sample_dir):
    film, _ = _marked_film(tmp_path, sample_dir)
    out = tmp_path / "kept.dcm"
    result = CliRunner().invoke(app, ["convert", str(film), str(out)])
    assert result.exit_code == 0, result.stderr
    ds = pydicom.dcmread(out)
    assert str(ds.PatientName).startswith(MARK) and ds.StudyInstanceUID == pydicom.dcmread(film).StudyInstanceUID


def test_one_run_maps_one_study_to_one_new_study(tmp_path, sample_dir):
    film, _ = _marked_film(tmp_path, sample_dir)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(film, folder / "a.dcm")
    shutil.copy(film, folder / "b.dcm")
    result = CliRunner().invoke(app, ["convert", str(folder), str(tmp_path / "out"), "--format", "dcm", "--deidentify"])
    assert result.exit_code == 0, result.stderr
    a, b = (pydicom.dcmread(tmp_path / "out" / f"{n}.dcm") for n in "ab")
    assert a.StudyInstanceUID == b.StudyInstanceUID != pydicom.dcmread(film).StudyInstanceUID
    assert a.PatientID == b.PatientID
