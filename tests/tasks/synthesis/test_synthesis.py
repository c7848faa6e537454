"""Missing-modality synthesis: the model, subject folders, the subject-level split, geometry, uncertainty,
DICOM in/out, the baselines and the CLI (train synthesis, synthesize, evaluate synthesis)."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medvae.data.paired import find_subjects
from medvae.errors import InputError, UsageError
from medvae.metrics import masked_image_metrics, spearman
from medvae.losses import gaussian_kl
from medvae.models.synthesis import SynthesisConfig, SynthesisModel
from medvae_cli.main import app

runner = CliRunner()
TINY = dict(spacing=(4.0, 4.0, 4.0), channels=(4, 8), latent_channels=2, epochs=1, batch_size=8, progress=False,
            previews=False, device="cpu")


# ----------------------------------------------------------------------------- model


@pytest.mark.parametrize("spatial_dims,shape", [(2, (2, 3, 32, 48)), (3, (2, 1, 24, 24, 24))])
@pytest.mark.parametrize("gan,latent", [(True, 2), (False, 0)])
def test_model_shapes_and_terms(spatial_dims, shape, gan, latent):
    model = SynthesisModel(SynthesisConfig(spatial_dims=spatial_dims, in_channels=shape[1], channels=(4, 8, 16),
                                           latent_channels=latent, gan=gan, adv_warmup_epochs=0))
    batch = {"source": torch.randn(shape), "target": torch.randn(shape[0], 1, *shape[2:])}
    out = model.loss(batch)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert ("kl" in out.terms) == bool(latent) and ("adv" in out.terms) == gan
    assert hasattr(model, "discriminator_loss") == gan
    if gan:
        assert torch.isfinite(model.discriminator_loss(batch).loss)
    draws = model.generator.sample(batch["source"], 3)
    assert draws.shape == (3, shape[0], 2, *shape[2:])  # mean and log scale
    assert model.generator(batch["source"]).shape == (shape[0], 1, *shape[2:])


@pytest.mark.parametrize("bad, word", [
    (dict(spatial_dims=1), "spatial_dims"), (dict(in_channels=0), "in_channels"), (dict(channels=(8,)), "channels"),
    (dict(channels=(8, 0)), "channels"), (dict(latent_channels=-1), "latent_channels"), (dict(beta=-1), "beta"),
])
def test_config_errors_name_the_parameter(bad, word):
    with pytest.raises(ValueError, match=word):
        SynthesisConfig(**bad)


def test_kl_between_gaussians_matches_torch():
    mu_q, lv_q, mu_p, lv_p = (torch.randn(2, 3, 4) for _ in range(4))
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu_q, (0.5 * lv_q).exp()),
                                            torch.distributions.Normal(mu_p, (0.5 * lv_p).exp())).flatten(1).sum(1)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, mu_p, lv_p), ref, atol=1e-5)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, mu_q, lv_q), torch.zeros(2), atol=1e-6)


def test_predictive_moments_follow_the_law_of_total_variance():
    from medvae.models.synthesis import predictive_moments

    draws = torch.zeros(2, 1, 2, 3)  # (K, B, C, x)
    draws[0, 0, 0], draws[1, 0, 0] = 1.0, 3.0
    draws[:, 0, 1] = np.log(0.5)  # Laplace scale 0.5: variance 2 * 0.25
    mean, std = predictive_moments(draws)
    assert torch.allclose(mean, torch.full((1, 3), 2.0)) and torch.allclose(std, torch.full((1, 3), 2.5**0.5))
    mean, std = predictive_moments(draws[:1, :, :1])  # one draw, no scale: no spread
    assert (std == 0).all()


@pytest.mark.parametrize("gan", [True, False])
def test_training_steps_lower_the_l1(gan):
    torch.manual_seed(0)
    model = SynthesisModel(SynthesisConfig(channels=(8, 16), latent_channels=2 if gan else 0, gan=gan,
                                           adv_warmup_epochs=0))
    src = torch.rand(8, 1, 16, 16)
    batch = {"source": src, "target": 0.5 * src + 0.2}
    opt = torch.optim.Adam(model.generator.parameters(), 3e-3)
    first = model.loss(batch).terms["l1"].item()
    for _ in range(30):
        opt.zero_grad()
        model.loss(batch).loss.backward()
        opt.step()
    model.eval()
    assert model.loss(batch).terms["l1"].item() < 0.5 * first


# ----------------------------------------------------------------------------- subject folders


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_subject_folders_with_brats_names_and_dicom_folders(tmp_path):
    _touch(tmp_path / "BraTS_001" / "BraTS_001_t1.nii.gz")
    _touch(tmp_path / "BraTS_001" / "BraTS_001_t1ce.nii.gz")  # not t1
    _touch(tmp_path / "BraTS_001" / "BraTS_001_t2.nii.gz")
    _touch(tmp_path / "sub-2" / "T1.nii")
    (tmp_path / "sub-2" / "t2").mkdir()
    (tmp_path / "notes").mkdir()  # no images: not a subject
    subjects = find_subjects(tmp_path, ["t1", "t2"])
    assert [s.name for s in subjects] == ["BraTS_001", "sub-2"]
    assert subjects[0].files["t1"].name == "BraTS_001_t1.nii.gz"
    assert subjects[1].files["t2"].name == "t2" and subjects[1].files["t1"].name == "T1.nii"
    assert [s.name for s in find_subjects(tmp_path / "sub-2", ["t1", "t2"])] == ["sub-2"]  # one subject folder


def test_missing_modality_names_subject_and_modality(tmp_path):
    _touch(tmp_path / "sub-001" / "t1.nii.gz")
    _touch(tmp_path / "sub-001" / "cbf.nii.gz")
    _touch(tmp_path / "sub-002" / "cbf.nii.gz")
    with pytest.raises(InputError, match=r"sub-002.*no 't1' image"):
        find_subjects(tmp_path, ["t1", "cbf"])
    _touch(tmp_path / "sub-002" / "t1.nii")
    _touch(tmp_path / "sub-002" / "t1.nii.gz")
    with pytest.raises(InputError, match=r"sub-002 has 2 't1' images"):
        find_subjects(tmp_path, ["t1", "cbf"])


def test_missing_modality_on_the_command_line_is_one_line(phantoms, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(phantoms, data)
    (data / "sub-002" / "flair.nii.gz").unlink()
    result = runner.invoke(app, ["train", "synthesis", "--data", str(data), "--source", "t1", "--source", "flair",
                                 "--target", "cbf", "--out", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "sub-002" in result.stderr and "'flair'" in result.stderr


@pytest.mark.parametrize("args, word", [
    (["--source", "cbf", "--target", "cbf"], "also a source"),
    (["--source", "t1", "--source", "t1", "--target", "cbf"], "twice"),
    (["--source", "mask", "--target", "cbf"], "mask"),
    (["--source", "t1", "--target", "cbf", "--model", "gan"], "--model"),
    (["--source", "t1", "--target", "cbf", "--spacing", "2,2"], "--spacing"),
])
def test_bad_usage_exits_2(phantoms, tmp_path, args, word):
    result = runner.invoke(app, ["train", "synthesis", "--data", str(phantoms), *args,
                                 "--out", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 2, result.output
    assert word in result.stderr and result.stderr.count("\n") == 1


# ----------------------------------------------------------------------------- training and synthesis


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from medvae.phantoms.brain import write_brain_phantoms

    return write_brain_phantoms(4, tmp_path_factory.mktemp("brain") / "data", seed=1, progress=False)[0].parent


@pytest.fixture(scope="module")
def trained(phantoms, tmp_path_factory):
    from medvae.tasks.synthesis.train import train_synthesis

    out = tmp_path_factory.mktemp("model") / "syn.safetensors"
    result = train_synthesis(data=str(phantoms), sources=("t1", "t2"), target="cbf", out=out, **TINY)
    return result


def test_split_is_by_subject(trained, phantoms):
    from medvae.checkpoint import read_model_info

    assert set(trained.train_subjects).isdisjoint(trained.test_subjects)
    assert sorted(trained.train_subjects + trained.test_subjects) == ["sub-001", "sub-002", "sub-003", "sub-004"]
    training = read_model_info(trained.model_path).training
    assert [p.split("/")[-1] for p in training["train_subjects"]] == trained.train_subjects
    # every training slice comes from a training subject: the counts add up per subject
    from medvae.data.paired import prepare_subject
    from medvae.tasks.synthesis.train import SynthesisTrainConfig, load_subjects, training_examples
    from medvae.train.recipe import configure

    config = configure(SynthesisTrainConfig, data=str(phantoms), sources=("t1", "t2"), **TINY)
    subjects, images = load_subjects(config)
    per = {}
    for s, im in zip(subjects, images):
        p = prepare_subject(im, ["t1", "t2"], spacing=(4, 4, 4), multiple=2, spatial_dims=2, target="cbf")
        per[s.name] = len(training_examples([p], 1.0, config, 0)["source"])
    assert trained.n_train == sum(per[n] for n in trained.train_subjects)
    assert trained.n_val == sum(per[n] for n in trained.test_subjects)


def test_output_geometry_equals_input_for_an_oblique_odd_volume(trained, phantoms, tmp_path):
    import SimpleITK as sitk
    from scipy.spatial.transform import Rotation

    src = nib.load(phantoms / "sub-001" / "t1.nii.gz")
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", [12, -20, 75], degrees=True).as_matrix() @ np.diag([-2.5, 2.2, 3.1])
    affine[:3, 3] = [60, -80, -40]
    array = np.asarray(src.dataobj)[5:78, 9:96, 11:70]  # 73 x 87 x 59: odd sizes
    subject = tmp_path / "oblique"
    subject.mkdir()
    for name in ("t1", "t2"):
        data = np.asarray(nib.load(phantoms / "sub-001" / f"{name}.nii.gz").dataobj)[5:78, 9:96, 11:70]
        nib.save(nib.Nifti1Image(data, affine), subject / f"{name}.nii.gz")
    out, std, model_std = tmp_path / "cbf.nii.gz", tmp_path / "cbf_std.nii.gz", tmp_path / "cbf_model_std.nii.gz"
    result = runner.invoke(app, ["synthesize", str(trained.model_path), str(subject), str(out),
                                 "--uncertainty", str(std), "--model-uncertainty", str(model_std), "--samples", "4"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out} and {std} and {model_std}"
    assert "synthesising slices" in result.stderr  # one subject: a bar over its slices, not minutes of silence
    for path in (out, std, model_std):
        img = nib.load(path)
        assert img.shape == array.shape
        np.testing.assert_allclose(img.affine, affine, atol=1e-4)
        s = sitk.ReadImage(str(path))
        assert s.GetSize() == array.shape
        np.testing.assert_allclose(s.GetSpacing(), [2.5, 2.2, 3.1], atol=1e-4)
        lps = np.diag([-1, -1, 1])
        np.testing.assert_allclose(np.array(s.GetDirection()).reshape(3, 3),
                                   lps @ affine[:3, :3] / [2.5, 2.2, 3.1], atol=1e-4)
        np.testing.assert_allclose(s.GetOrigin(), lps @ affine[:3, 3], atol=1e-3)
    mean = np.asarray(nib.load(out).dataobj)
    assert np.isfinite(mean).all() and mean.std() > 0
    # the model's part of the spread: non-negative, never above the total, positive where draws differ
    total, part = np.asarray(nib.load(std).dataobj), np.asarray(nib.load(model_std).dataobj)
    assert (part >= 0).all() and (part <= total).all() and part.max() > 0 and (part < total).any()
    assert "model std" in nib.load(model_std).header["descrip"].tobytes().decode()
    # skips an existing output without --overwrite: a note, exit code 0
    again = runner.invoke(app, ["synthesize", str(trained.model_path), str(subject), str(out)])
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.strip() == f"note: {out}: the output exists; skipped (--overwrite redoes it)"


def test_uncertainty_is_nonnegative_and_positive_where_draws_differ(trained, phantoms):
    from medvae.checkpoint import load_model
    from medvae.io.images import read_image
    from medvae.data.paired import prepare_subject
    from medvae.models.synthesis import predictive_moments
    from medvae.tasks.synthesis.synthesize import sample_on_grid, synthesize_subject

    model, info = load_model(trained.model_path)
    images = {m: read_image(phantoms / "sub-002" / f"{m}.nii.gz") for m in ("t1", "t2")}
    result = synthesize_subject(model, info, images, samples=5, seed=3)
    assert result.std.shape == result.mean.shape == result.model_std.shape == images["t1"].array.shape
    assert (result.std >= 0).all() and result.std.max() > 0
    assert (result.model_std >= 0).all() and (result.model_std <= result.std).all() and result.model_std.max() > 0
    assert result.draws is None  # kept only on request
    kept = synthesize_subject(model, info, images, samples=5, seed=3, keep_draws=True)
    assert kept.draws.shape == (2, 5, *images["t1"].array.shape) and (kept.draws[1] >= 0).all()
    np.testing.assert_allclose(kept.mean, result.mean, atol=1e-5)
    # the mean of the draws back on the subject's grid is the output; their spread (K-1) the model std
    np.testing.assert_allclose(kept.draws[0].mean(0), kept.mean, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(kept.draws[0].std(0, ddof=1), kept.model_std, rtol=1e-3, atol=1e-3)
    pre = info.preprocessing
    prepared = prepare_subject(images, ["t1", "t2"], spacing=pre["spacing"], multiple=pre["multiple"], spatial_dims=2)
    draws = sample_on_grid(model, prepared.source.as_tensor(), 5, seed=3)  # (K, 2, X, Y, Z)
    assert draws.shape[:2] == (5, 2)
    differ = np.ptp(draws[:, 0], axis=0) > 0
    _, std = predictive_moments(torch.from_numpy(draws)[:, None])
    assert differ.any() and (std[0].numpy()[differ] > 0).all() and (std >= 0).all()
    _, spread = predictive_moments(torch.from_numpy(draws[:, :1])[:, None])  # the draws' spread alone
    assert (spread[0].numpy()[differ] > 0).all() and (spread[0].numpy()[~differ] == 0).all()
    # the same seed gives the same draws; another seed others
    assert np.array_equal(draws, sample_on_grid(model, prepared.source.as_tensor(), 5, seed=3))
    assert not np.array_equal(draws, sample_on_grid(model, prepared.source.as_tensor(), 5, seed=4))


def test_dicom_series_in_gives_a_derived_synthetic_series_out(tmp_path, phantoms):
    import pydicom

    from medvae.io.images import read_image, write_image
    from medvae.tasks.synthesis.train import train_synthesis

    model = train_synthesis(data=str(phantoms), sources=("t1",), target="cbf", out=tmp_path / "one.safetensors",
                            **TINY).model_path
    t1 = read_image(phantoms / "sub-003" / "t1.nii.gz")
    series = write_image(t1, tmp_path / "t1.dcm")  # a DICOM series folder
    result = runner.invoke(app, ["synthesize", str(model), str(series), str(tmp_path / "cbf.dcm"), "--samples", "3",
                                 "--model-uncertainty", str(tmp_path / "cbf_model_std.dcm")])
    assert result.exit_code == 0, result.output
    back = read_image(tmp_path / "cbf")
    src = read_image(series)
    assert back.array.shape == src.array.shape
    np.testing.assert_allclose(back.affine, src.affine, atol=1e-3)
    spread = read_image(tmp_path / "cbf_model_std")
    assert spread.array.shape == src.array.shape and (spread.array >= 0).all()
    np.testing.assert_allclose(spread.affine, src.affine, atol=1e-3)
    first = pydicom.dcmread(sorted((tmp_path / "cbf_model_std").iterdir())[0])
    assert first.ImageType[0] == "DERIVED" and "model std" in first.DerivationDescription
    ds = pydicom.dcmread(sorted((tmp_path / "cbf").iterdir())[0])
    assert ds.ImageType[0] == "DERIVED" and "synthetic" in ds.DerivationDescription
    assert ds.SeriesInstanceUID != pydicom.dcmread(sorted(series.iterdir())[0]).SeriesInstanceUID
    if shutil.which("dciodvfy"):
        import subprocess

        report = subprocess.run(["dciodvfy", str(sorted((tmp_path / "cbf").iterdir())[0])], capture_output=True,
                                text=True)
        assert "Error" not in report.stderr, report.stderr


def test_folder_of_subjects_in_folder_out(trained, phantoms, tmp_path):
    data = tmp_path / "in"
    shutil.copytree(phantoms, data)
    (data / "sub-001" / "t2.nii.gz").rename(data / "sub-001" / "T2w.nii.gz")  # the first one fails; the rest go on
    result = runner.invoke(app, ["synthesize", str(trained.model_path), str(data), str(tmp_path / "out"),
                                 "--samples", "2", "--no-progress"])
    assert result.exit_code == 1
    assert "synthesised 3" in result.output and "sub-001" in result.output and "'t2'" in result.output
    for name in ("sub-002", "sub-003", "sub-004"):
        assert {p.name for p in (tmp_path / "out" / name).iterdir()} == {"cbf.nii.gz", "cbf_std.nii.gz",
                                                                         "cbf_model_std.nii.gz"}
        part, total = (np.asarray(nib.load(tmp_path / "out" / name / f).dataobj)
                       for f in ("cbf_model_std.nii.gz", "cbf_std.nii.gz"))
        assert (part >= 0).all() and (part <= total).all()
    extra = runner.invoke(app, ["synthesize", str(trained.model_path), str(data), str(tmp_path / "out2"),
                                "--uncertainty", str(tmp_path / "u.nii.gz")])
    assert extra.exit_code == 2 and "--uncertainty" in extra.stderr
    extra = runner.invoke(app, ["synthesize", str(trained.model_path), str(data), str(tmp_path / "out2"),
                                "--model-uncertainty", str(tmp_path / "u.nii.gz")])
    assert extra.exit_code == 2 and extra.stderr.startswith("error: --model-uncertainty is not used")
    inside = runner.invoke(app, ["synthesize", str(trained.model_path), str(data), str(data / "out")])
    assert inside.exit_code == 2 and "inside the input folder" in inside.stderr
    # a second run skips the subjects done (each named in a note) and tries the failed one again
    again = runner.invoke(app, ["synthesize", str(trained.model_path), str(data), str(tmp_path / "out"),
                                "--samples", "2", "--no-progress"])
    assert again.exit_code == 1 and "synthesised 0, skipped 3 already done" in again.stderr
    for name in ("sub-002", "sub-003", "sub-004"):
        assert f"note: {tmp_path / 'out' / name / 'cbf.nii.gz'}: the output exists; skipped" in again.stderr


def test_synthesize_refuses_other_models_and_bad_outputs(trained, phantoms, tmp_path):
    from medvae.checkpoint import save_model
    from medvae.models import ConvVAE, ConvVAEConfig

    other = save_model(tmp_path / "vae.safetensors", ConvVAE(ConvVAEConfig()))
    result = runner.invoke(app, ["synthesize", str(other), str(phantoms / "sub-001"), str(tmp_path / "x.nii.gz")])
    assert result.exit_code == 2 and "train synthesis" in result.stderr
    result = runner.invoke(app, ["synthesize", str(trained.model_path), str(phantoms / "sub-001"),
                                 str(tmp_path / "x.png")])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: OUTPUT {tmp_path / 'x.png'}: ")
    result = runner.invoke(app, ["synthesize", str(trained.model_path), str(phantoms / "sub-001" / "t1.nii.gz"),
                                 str(tmp_path / "x.nii.gz")])
    assert result.exit_code == 1 and "t1, t2" in result.stderr  # two sources need a subject folder


def test_synthesize_input_and_out_are_hidden_aliases(trained, phantoms, tmp_path):
    help_text = runner.invoke(app, ["synthesize", "--help"], terminal_width=200).stdout
    assert "INPUT" in help_text and "OUTPUT" in help_text and "--input" not in help_text and "--out " not in help_text
    out = tmp_path / "cbf.nii.gz"
    old = runner.invoke(app, ["synthesize", str(trained.model_path), "--input", str(phantoms / "sub-002"),
                              "--out", str(out), "--samples", "2"])
    assert old.exit_code == 0 and old.stdout.strip() == f"wrote {out}", old.output
    # an error about the output names what was typed: --out here, OUTPUT for the argument
    bad = runner.invoke(app, ["synthesize", str(trained.model_path), "--input", str(phantoms / "sub-002"),
                              "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and bad.stderr.startswith(f"error: --out {tmp_path / 'x.png'}: ")
    both = runner.invoke(app, ["synthesize", str(trained.model_path), str(phantoms / "sub-002"), str(out),
                               "--input", str(phantoms / "sub-002")])
    assert both.exit_code == 2 and both.stderr.strip() == "error: --input is the old spelling of INPUT; give INPUT only"
    missing = runner.invoke(app, ["synthesize", str(trained.model_path), str(phantoms / "sub-002")])
    assert missing.exit_code == 2 and missing.stderr.strip() == "error: missing argument OUTPUT"


# ----------------------------------------------------------------------------- evaluation


def test_metrics_in_mask():
    rng = np.random.default_rng(0)
    target = rng.random((20, 20, 20))
    mask = np.zeros(target.shape, bool)
    mask[5:15, 5:15, 5:15] = True
    same = masked_image_metrics(target, target, mask)
    assert same["mae"] == 0 and same["psnr"] == np.inf and same["ssim"] == pytest.approx(1)
    off = masked_image_metrics(target + 0.1, target, mask)
    assert off["mae"] == pytest.approx(0.1) and off["ssim"] < 1
    outside = target.copy()
    outside[~mask] = 99  # outside the mask does not count
    assert masked_image_metrics(outside, target, mask)["mae"] == 0
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_linear_baseline_recovers_a_linear_map():
    from medvae.io.images import Image
    from medvae.tasks.synthesis.evaluate import apply_linear, fit_linear

    rng = np.random.default_rng(1)
    subjects = []
    for _ in range(2):
        t1 = rng.uniform(1, 2, (6, 6, 6)).astype(np.float32)
        nz = t1[t1 != 0]
        z = (t1 - nz.mean()) / nz.std()
        subjects.append({"t1": Image(t1), "cbf": Image((3 + 2 * z).astype(np.float32))})
    coef = fit_linear(subjects, ["t1"], "cbf")
    np.testing.assert_allclose(coef, [3, 2], atol=1e-4)
    np.testing.assert_allclose(apply_linear(coef, subjects[0], ["t1"]), subjects[0]["cbf"].array, atol=1e-4)


def test_evaluate_synthesis_cli(trained, phantoms, tmp_path):
    import json

    result = runner.invoke(app, ["evaluate", "synthesis", str(trained.model_path), "--data", str(phantoms),
                                 "--samples", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["subject"] for r in report["subjects"]] == trained.test_subjects
    for method in ("model", "linear", "l1_unet"):
        assert set(report["mean"][method]) == {"psnr", "ssim", "mae"}
        assert np.isfinite(report["mean"][method]["mae"])
    assert set(report["mean"]["truth_model"]) == {"psnr", "ssim", "mae"}  # the phantoms' noise-free CBF
    assert -1 <= report["mean"]["truth_spearman"] <= 1
    # how far the uncertainty can be trusted: per subject and on average
    for row in [*report["subjects"], report["mean"]]:
        assert row["error_reference"] == "cbf_truth" and -1 <= row["model_std_spearman"] <= 1
        assert 0 <= row["mean_model_std"] <= row["mean_std"]
        assert set(row["coverage"]["model"]) == set(row["coverage_gaussian"]) == {"0.5", "0.9", "0.95"}
        assert all(0 <= v <= 1 for v in row["coverage"]["model"].values())
        assert row["coverage"]["model"]["0.5"] <= row["coverage"]["model"]["0.9"] <= row["coverage"]["model"]["0.95"]
        assert row["coverage"]["linear"] is None and row["coverage"]["l1_unet"] is None  # no predicted spread
        curve = row["sparsification"]
        assert curve["fractions"] == [0.05, 0.1, 0.2] and curve["random"] == [curve["mean_all"]] * 3
        assert all(o <= m + 1e-9 for o, m in zip(curve["oracle"], curve["model"]))
        assert curve["oracle_share_10"] == pytest.approx(curve["oracle_share"][1])
    checks = {c["check"]: c for c in report["checks"]}
    for name in ("Spearman(model std, |error vs truth|) > 0.3", "PSNR vs measured >= 21.3 dB",
                 "SSIM vs measured >= 0.689", "coverage of the 50 % interval vs measured within 50 ± 5 %",
                 "coverage of the 95 % interval vs measured within 95 ± 5 %",
                 "removing the 10 % highest model std cuts >= 1/3 of the oracle's cut in |error vs truth|"):
        assert isinstance(checks[name]["pass"], bool) and np.isfinite(checks[name]["value"]), name
    assert checks["PSNR vs measured >= 21.3 dB"]["value"] == report["mean"]["model"]["psnr"]
    assert trained.model_path.with_suffix(".l1unet.safetensors").is_file()  # trained once, then reused
    assert "trained with the model's data" in report["baseline_note"]
    text = runner.invoke(app, ["evaluate", "synthesis", str(trained.model_path), "--data", str(phantoms),
                               "--samples", "3"])
    assert text.exit_code == 0 and "L1 U-Net" in text.stdout and "Spearman" in text.stdout
    assert "against the noise-free cbf_truth" in text.stdout
    assert "sparsification" in text.stdout and "cov 90%" in text.stdout and "share of oracle @10 %" in text.stdout
    assert all(f"{'PASS' if c['pass'] else 'MISS'}  {c['check']}: {c['measured']}" in text.stdout
               for c in report["checks"])
    assert "trained with" not in text.stdout  # reused
    # the L1 U-Net has no latent: its model uncertainty is 0 everywhere, and a note says so
    unet = trained.model_path.with_suffix(".l1unet.safetensors")
    zero = runner.invoke(app, ["synthesize", str(unet), str(phantoms / "sub-002"), str(tmp_path / "u.nii.gz"),
                               "--model-uncertainty", str(tmp_path / "u_model_std.nii.gz"), "--samples", "2"])
    assert zero.exit_code == 0, zero.output
    assert "no latent" in zero.stderr and "0 everywhere" in zero.stderr
    assert not np.asarray(nib.load(tmp_path / "u_model_std.nii.gz").dataobj).any()
    only_train = tmp_path / "train_only"
    only_train.mkdir()
    for name in trained.train_subjects:
        (only_train / name).symlink_to(phantoms / name)
    refused = runner.invoke(app, ["evaluate", "synthesis", str(trained.model_path), "--data", str(only_train)])
    assert refused.exit_code == 1 and "held-out" in refused.stderr


def test_evaluation_means_over_several_subjects():
    from medvae.tasks.synthesis.evaluate import checks, format_report, mean_over_subjects
    from medvae.tasks.synthesis.uncertainty import sparsification

    rng = np.random.default_rng(0)
    rows = []
    for i, (cov, rho) in enumerate([(0.4, 0.2), (0.6, 0.6), (0.5, 0.4)]):
        error = rng.laplace(0, 1, 1000)
        curve = sparsification(error, np.abs(error) + rng.normal(0, 0.5, 1000))
        metrics = {m: {"psnr": 22.0 + i, "ssim": 0.7, "mae": 3.0} for m in ("model", "linear", "l1_unet")}
        rows.append({"subject": f"s{i}", "mean_std": 2.0, "mean_model_std": 1.0, "error_reference": "cbf_truth",
                     "model_std_spearman": rho, "spearman": 0.5, "truth_spearman": 0.5,
                     **metrics, **{"truth_" + m: v for m, v in metrics.items()},
                     "coverage": {"model": {"0.5": cov, "0.9": 0.9, "0.95": 0.95}, "linear": None, "l1_unet": None},
                     "coverage_gaussian": {"0.5": cov, "0.9": 0.9, "0.95": 0.95},
                     "sparsification": {**curve, "oracle_share_10": curve["oracle_share"][1]}})
    mean = mean_over_subjects(rows)
    assert mean["model"]["psnr"] == pytest.approx(23) and mean["model_std_spearman"] == pytest.approx(0.4)
    assert mean["coverage"]["model"]["0.5"] == pytest.approx(0.5) and mean["coverage"]["linear"] is None
    s = mean["sparsification"]
    assert s["fractions"] == [0.05, 0.1, 0.2]
    assert s["mean_all"] == pytest.approx(np.mean([r["sparsification"]["mean_all"] for r in rows]))
    assert s["oracle_share_10"] == pytest.approx((s["mean_all"] - s["model"][1]) / (s["mean_all"] - s["oracle"][1]))
    found = {c["check"]: c["pass"] for c in checks(mean)}
    assert found["PSNR vs measured >= 21.3 dB"] and found["SSIM vs measured >= 0.689"]
    assert found["coverage of the 50 % interval vs measured within 50 ± 5 %"]
    assert found["Spearman(model std, |error vs truth|) > 0.3"]
    result = {"sources": ["t1"], "target": "cbf", "samples": 4, "normalize": "z-score", "baseline_note": "",
              "levels": [0.5, 0.9, 0.95], "fractions": [0.05, 0.1, 0.2], "subjects": rows, "mean": mean,
              "checks": checks(mean)}
    text = format_report(result)
    assert text.count("\ns1 ") == 4 and "(linear and L1 U-Net: no predicted spread, so no coverage)" in text


def test_3d_patches_train_and_synthesize_a_whole_volume(phantoms, tmp_path):
    from medvae.tasks.synthesis.synthesize import synthesize
    from medvae.tasks.synthesis.train import train_synthesis

    result = train_synthesis(data=str(phantoms), sources=("t1",), target="cbf", out=tmp_path / "m3.safetensors",
                             spatial_dims=3, patch_size=16, patches_per_subject=4,
                             **{**TINY, "channels": (4, 8)})
    assert result.n_train == 4 * len(result.train_subjects)
    report = synthesize(result.model_path, phantoms / "sub-001" / "t1.nii.gz", tmp_path / "cbf.nii.gz", samples=2,
                        uncertainty=tmp_path / "std.nii.gz", progress=False)
    assert report.exit_code == 0
    src = nib.load(phantoms / "sub-001" / "t1.nii.gz")
    for name in ("cbf.nii.gz", "std.nii.gz"):
        out = nib.load(tmp_path / name)
        assert out.shape == src.shape and np.allclose(out.affine, src.affine)
    with pytest.raises(UsageError, match="patch_size"):
        train_synthesis(data=str(phantoms), spatial_dims=3, patch_size=12, out=tmp_path / "x.safetensors")
