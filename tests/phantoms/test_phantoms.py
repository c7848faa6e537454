"""Brain phantoms: physiological CBF, tissue contrasts, geometry, determinism, layout."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medvae.phantoms.brain import BrainPhantomConfig, brain_subject, load_templates
from medvae_cli.main import app


@pytest.fixture(scope="module")
def templates():
    return load_templates()


@pytest.fixture(scope="module")
def subject(templates):
    return brain_subject(3, templates=templates)


def test_cbf_is_physiological(subject):
    v, _ = subject
    gm, wm, csf, brain = v["gm"] > 0.8, v["wm"] > 0.8, v["csf"] > 0.8, v["mask"] > 0
    cbf = v["cbf"]
    # pure tissue 60 / 20 / 0 ml/100 g/min, lowered or raised by ASL-like smoothing (partial volume) and noise
    assert 40 < cbf[gm].mean() < 75
    assert 12 < cbf[wm].mean() < 35
    assert cbf[csf].mean() < 25
    assert cbf[gm].mean() > 1.5 * cbf[wm].mean()
    assert 30 < cbf[brain].mean() < 60  # whole-brain CBF of healthy adults is about 40-50
    assert np.all(cbf[~brain] == 0)
    assert 3 < cbf[wm].std() < 15  # noisy, like a real CBF map


def test_cbf_noise_varies_as_asl_noise_does(subject):
    v, _ = subject
    noise = v["cbf"] - v["cbf_truth"]
    gm, wm, csf = v["gm"] > 0.8, v["wm"] > 0.8, v["csf"] > 0.8
    assert np.all(noise[v["mask"] == 0] == 0)
    # physiological noise grows with perfusion; thermal noise with 1/M0 (CSF has the highest M0)
    assert noise[gm].std() > 1.2 * noise[wm].std() > 1.2 * noise[csf].std()
    assert 4 < noise[v["mask"] > 0].std() < 9
    assert abs(noise[gm].mean()) < 0.5  # zero-mean


def test_structural_contrasts(subject):
    v, _ = subject
    gm, wm, csf = v["gm"] > 0.8, v["wm"] > 0.8, v["csf"] > 0.8
    mean = {k: {t: float(v[k][m].mean()) for t, m in (("gm", gm), ("wm", wm), ("csf", csf))}
            for k in ("t1", "t2", "flair")}
    assert mean["t1"]["wm"] > mean["t1"]["gm"] > mean["t1"]["csf"]  # T1-weighted
    assert mean["t2"]["csf"] > mean["t2"]["gm"] > mean["t2"]["wm"]  # T2-weighted
    assert mean["flair"]["gm"] > mean["flair"]["wm"] > mean["flair"]["csf"]  # CSF suppressed
    for k in ("t1", "t2", "flair"):
        assert v[k].min() >= 0 and np.all(v[k][v["mask"] == 0] == 0)


def test_subjects_differ_and_seeds_repeat(templates):
    a, _ = brain_subject(1, templates=templates)
    b, _ = brain_subject(2, templates=templates)
    again, _ = brain_subject(1, templates=templates)
    np.testing.assert_array_equal(a["t1"], again["t1"])
    assert np.abs(a["mask"] - b["mask"]).mean() > 0.01  # different anatomy
    assert abs(a["t1"][a["mask"] > 0].mean() - b["t1"][b["mask"] > 0].mean()) > 1  # different scanner


def test_no_deformation_keeps_the_template(templates):
    config = BrainPhantomConfig(deformation_mm=0, scale_range=0)
    v, affine = brain_subject(0, config, templates)
    np.testing.assert_array_equal(v["mask"] > 0, templates[0]["t1"] > 0)
    np.testing.assert_array_equal(affine, templates[1])


def test_cli_writes_the_subject_layout(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["phantom", "brain", "--n", "2", "--out", str(tmp_path / "b"), "--no-progress"])
    assert result.exit_code == 0, result.output
    for sub in ("sub-001", "sub-002"):
        names = sorted(p.name for p in (tmp_path / "b" / sub).iterdir())
        assert names == ["cbf.nii.gz", "cbf_truth.nii.gz", "flair.nii.gz", "mask.nii.gz", "t1.nii.gz", "t2.nii.gz"]
        imgs = [nib.load(tmp_path / "b" / sub / n) for n in names]
        assert len({i.shape for i in imgs}) == 1 and all(np.allclose(i.affine, imgs[0].affine) for i in imgs)
        np.testing.assert_allclose(imgs[0].header.get_zooms(), (2.0, 2.0, 2.0))
    again = runner.invoke(app, ["phantom", "brain", "--n", "1", "--out", str(tmp_path / "b")])
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.strip() == f"note: {tmp_path / 'b'}: the phantom set exists; skipped (--overwrite redoes it)"
    bad = runner.invoke(app, ["phantom", "brain", "--n", "0", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and bad.stderr.strip() == "error: --n must be a positive integer, got 0"


def test_cli_subjects_is_a_hidden_alias_of_n(tmp_path):
    runner = CliRunner()
    assert "--subjects" not in runner.invoke(app, ["phantom", "brain", "--help"]).stdout
    result = runner.invoke(app, ["phantom", "brain", "--subjects", "1", "--out", str(tmp_path / "b"),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["sub-001"]
    bad = runner.invoke(app, ["phantom", "brain", "--subjects", "0", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and bad.stderr.strip() == "error: --subjects must be a positive integer, got 0"
    both = runner.invoke(app, ["phantom", "brain", "--n", "2", "--subjects", "1", "--out", str(tmp_path / "d")])
    assert both.exit_code == 2 and "--subjects is the old spelling of --n" in both.stderr
    assert not (tmp_path / "d").exists()
