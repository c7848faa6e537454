"""ConvVAE and VAE-GAN: shapes, losses, the two-optimiser loop, model files, train/generate end to end."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from medvae.checkpoint import load_model, save_model
from medvae.data.datasets import TensorBatches
from medvae.errors import UsageError
from medvae.losses import gaussian_nll, kl_weight
from medvae.models import VAEGAN, ConvVAE, ConvVAEConfig, VAEGANConfig
from medvae.train import TrainConfig, fit
from medvae_cli.main import app

runner = CliRunner()


def small(cls, spatial_dims=2, **kw):
    config_cls = ConvVAEConfig if cls is ConvVAE else VAEGANConfig
    shape = (1,) + (16,) * spatial_dims
    return cls(config_cls(spatial_dims=spatial_dims, in_shape=shape, channels=(8, 16), strides=(2, 2),
                          latent_dim=4, **kw))


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("cls", [ConvVAE, VAEGAN])
def test_shapes(cls, spatial_dims):
    model = small(cls, spatial_dims)
    x = torch.rand(3, 1, *(16,) * spatial_dims)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 4)
    assert model.decode(mu).shape == x.shape
    assert model.generate(torch.randn(5, 4)).shape == (5, 1, *(16,) * spatial_dims)
    out = model.loss({"image": x})
    assert out.loss.ndim == 0 and {"recon", "kl"} <= set(out.terms)


@pytest.mark.parametrize("kwargs, message", [
    (dict(spatial_dims=4), "spatial_dims must be 2 or 3"),
    (dict(in_shape=(1, 30, 30)), "divisible by the total down-sampling 4"),
    (dict(likelihood="poisson"), "likelihood must be"),
    (dict(beta=-1.0), "beta must be 0 or more"),
    (dict(sigma=0.0), "sigma must be positive"),
    (dict(kl_warmup_epochs=-1), "kl_warmup_epochs"),
    (dict(channels=(8,), strides=(2, 2)), "same, non-zero length"),
])
def test_config_errors_name_the_parameter(kwargs, message):
    base = dict(in_shape=(1, 16, 16), channels=(8, 16), strides=(2, 2))
    with pytest.raises(UsageError, match=message):
        ConvVAEConfig(**{**base, **kwargs})
    with pytest.raises(UsageError, match="disc_channels"):
        VAEGANConfig(**base, disc_channels=0)


def test_losses_and_schedules():
    x = torch.rand(2, 1, 4, 4)
    sigma = 0.5
    expected = ((x - 0.25) ** 2).flatten(1).sum(1) / (2 * sigma**2) + 16 * (np.log(sigma) + 0.5 * np.log(2 * np.pi))
    torch.testing.assert_close(gaussian_nll(torch.full_like(x, 0.25), x, sigma), expected)
    assert [kl_weight(2.0, e, 4) for e in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]
    assert kl_weight(1.0, 0, 0) == 1.0
    gan = small(VAEGAN, adv_warmup_epochs=2)
    gan.set_epoch(0)
    assert gan.adv_scale == 0 and gan.generator.kl_weight == 1.0
    gan.set_epoch(1)
    assert gan.adv_scale == 0.5


@pytest.mark.parametrize("cls", [ConvVAE, VAEGAN])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_optimisation_steps_lower_the_loss(cls, likelihood):
    torch.manual_seed(0)
    model = small(cls, likelihood=likelihood)
    model.set_epoch(5)
    x = (torch.rand(8, 1, 16, 16) > 0.5).float()
    opt = torch.optim.Adam(model.generator.parameters() if cls is VAEGAN else model.parameters(), lr=1e-3)

    def vae_loss():
        torch.manual_seed(1)
        with torch.no_grad():
            recon, kl = model.elbo_terms(x)
        return float((recon + kl).mean())

    before = vae_loss()
    for _ in range(10):
        opt.zero_grad()
        model.loss({"image": x}).loss.backward()
        opt.step()
    assert vae_loss() < before


def test_vaegan_trains_both_halves_and_resumes_exactly(tmp_path):
    data = TensorBatches({"image": torch.rand(24, 1, 16, 16)})

    def run(epochs, resume=False):
        torch.manual_seed(0)
        model = small(VAEGAN, adv_warmup_epochs=0)
        config = TrainConfig(epochs=epochs, batch_size=8, progress=False, device="cpu", seed=3,
                             state_path=tmp_path / "state.pt", resume=resume)
        return model, fit(model, data, data, config)

    torch.manual_seed(0)
    d0 = {k: v.clone() for k, v in small(VAEGAN, adv_warmup_epochs=0).discriminator.state_dict().items()}
    straight, record = run(3)
    assert "d_loss" in record.train_terms[-1] and "adv" in record.train_terms[-1]
    assert any(not torch.equal(d0[k], v) for k, v in straight.discriminator.state_dict().items())
    (tmp_path / "state.pt").unlink()
    run(1)
    resumed, _ = run(3, resume=True)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_model_file_holds_both_halves(tmp_path):
    model = small(VAEGAN)
    save_model(tmp_path / "g.safetensors", model, preprocessing={"size": [16, 16]})
    loaded, info = load_model(tmp_path / "g.safetensors")
    assert info.kind == "vae_gan" and isinstance(loaded, VAEGAN)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert any(k.startswith("discriminator.") for k in loaded.state_dict())


# ---------------------------------------------------------------- end to end through the CLI
@pytest.fixture
def mixed_folder(tmp_path):
    """Twelve PNGs of three different sizes (and one broken file): blobs on a dark background."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(12):
        h, w = [(40, 40), (60, 30), (24, 48)][i % 3]
        yy, xx = np.mgrid[:h, :w]
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        img = 200 * np.exp(-(((yy - cy) / (0.2 * h)) ** 2 + ((xx - cx) / (0.2 * w)) ** 2)) + rng.uniform(0, 20, (h, w))
        PILImage.fromarray(img.astype(np.uint8)).save(folder / f"img{i:02d}.png")
    (folder / "broken.png").write_text("not a png")
    return folder


@pytest.mark.parametrize("kind", ["vae", "vaegan"])
def test_train_on_a_folder_with_mixed_sizes_then_generate(tmp_path, mixed_folder, kind):
    model = tmp_path / f"{kind}.safetensors"
    result = runner.invoke(app, ["train", kind, "--data", str(mixed_folder), "--size", "16", "--channels", "8,16",
                                 "--latent-dim", "2", "--epochs", "2", "--batch-size", "4", "--out", str(model),
                                 "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "trained" in result.stdout and "broken.png" in result.stderr  # the bad file is named, not fatal
    for suffix in (".recon.png", ".samples.png", ".state.pt"):
        assert (tmp_path / f"{kind}{suffix}").exists()
    gen = runner.invoke(app, ["generate", str(model), "--n", "5", "--out", str(tmp_path / "a"), "--seed", "7"])
    assert gen.exit_code == 0, gen.output
    files = sorted((tmp_path / "a").glob("sample_*.png"))
    assert len(files) == 5 and (tmp_path / "a" / "contact_sheet.png").exists()
    runner.invoke(app, ["generate", str(model), "--n", "5", "--out", str(tmp_path / "b"), "--seed", "7"])
    runner.invoke(app, ["generate", str(model), "--n", "5", "--out", str(tmp_path / "c"), "--seed", "8"])
    same = [np.array_equal(np.asarray(PILImage.open(f)), np.asarray(PILImage.open(tmp_path / d / f.name)))
            for d in ("b", "c") for f in files]
    assert all(same[:5]) and not all(same[5:])  # the same seed, the same images; another seed, others
    grid = runner.invoke(app, ["generate", str(model), "--grid", "--grid-size", "3", "--out", str(tmp_path / "g")])
    assert grid.exit_code == 0 and len(list((tmp_path / "g").glob("grid_*.png"))) == 9
    pngs = sorted(mixed_folder.glob("img*.png"))
    interp = runner.invoke(app, ["generate", str(model), "--interpolate", str(pngs[0]), str(pngs[1]),
                                 "--steps", "4", "--out", str(tmp_path / "i")])
    assert interp.exit_code == 0, interp.output
    assert len(list((tmp_path / "i").glob("interp_*.png"))) == 4


def test_generated_dicom_is_marked_synthetic(tmp_path, mixed_folder):
    import pydicom

    model = tmp_path / "m.safetensors"
    runner.invoke(app, ["train", "vae", "--data", str(mixed_folder), "--size", "16", "--channels", "8,16",
                        "--epochs", "1", "--out", str(model), "--no-progress", "--device", "cpu"])
    result = runner.invoke(app, ["generate", str(model), "--n", "2", "--format", "dcm", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    ds = pydicom.dcmread(sorted((tmp_path / "d").glob("*.dcm"))[0])
    assert "synthetic" in ds.DerivationDescription and "SYNTHETIC" in ds.ImageComments and ds.ConversionType == "SYN"


def test_3d_vae_on_nifti_volumes_generates_nifti_with_the_data_voxel_size(tmp_path):
    folder = tmp_path / "vols"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        vol = rng.uniform(0, 1, (20, 20, 10)).astype(np.float32)
        vol[5:15, 5:15, 3:7] += 3
        nib.save(nib.Nifti1Image(vol, np.diag([1.5, 1.5, 3.0, 1.0])), folder / f"v{i}.nii.gz")
    model = tmp_path / "v.safetensors"
    result = runner.invoke(app, ["train", "vae", "--data", str(folder), "--spatial-dims", "3", "--size", "16",
                                 "--channels", "8,16", "--epochs", "1", "--batch-size", "2", "--out", str(model),
                                 "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    gen = runner.invoke(app, ["generate", str(model), "--n", "2", "--format", "nii", "--out", str(tmp_path / "g")])
    assert gen.exit_code == 0, gen.output
    out = nib.load(sorted((tmp_path / "g").glob("*.nii.gz"))[0])
    assert out.shape == (16, 16, 16)
    # 20 x 1.5 mm = 30 mm and 10 x 3 mm = 30 mm fit 16 voxels: 30 / 16 mm each
    np.testing.assert_allclose(out.header.get_zooms(), [30 / 16] * 3, rtol=1e-5)
    png = runner.invoke(app, ["generate", str(model), "--format", "png", "--out", str(tmp_path / "p")])
    assert png.exit_code == 2 and "cannot hold the volumes" in png.stderr


def test_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["train", "vae", "--data", str(tmp_path / "empty"), "--no-progress"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "no usable 2-D images" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    bad_size = runner.invoke(app, ["train", "vae", "--data", "mnist", "--size", "30", "--channels", "8,16,32"])
    assert bad_size.exit_code == 2 and "divisible" in bad_size.stderr
    three_d = runner.invoke(app, ["train", "vae", "--data", "mnist", "--spatial-dims", "3"])
    assert three_d.exit_code == 2 and "folder of volumes" in three_d.stderr


def test_mnist_vae_trains_and_its_grid_needs_a_2d_latent(tmp_path):
    model = tmp_path / "mnist.safetensors"
    result = runner.invoke(app, ["train", "vae", "--data", "mnist", "--limit", "300", "--epochs", "1",
                                 "--out", str(model), "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert " for 1 epoch in " in result.stdout  # not "1 epochs"
    # MNIST digits have no physical size: generated DICOM/NIfTI claim none, and the DICOM stays readable
    import nibabel as nib
    import pydicom

    assert load_model(model)[1].preprocessing["spacing"] is None
    for fmt in ("dcm", "nii"):
        made = runner.invoke(app, ["generate", str(model), "--n", "1", "--format", fmt, "--out", str(tmp_path / fmt)])
        assert made.exit_code == 0, made.output
    ds = pydicom.dcmread(tmp_path / "dcm" / "sample_0001.dcm")
    assert "PixelSpacing" not in ds and "ImagerPixelSpacing" not in ds and ds.pixel_array.shape == (32, 32)
    nii = nib.load(next((tmp_path / "nii").glob("sample_0001.nii*")))
    assert int(nii.header["qform_code"]) == 0
    grid = runner.invoke(app, ["generate", str(model), "--grid", "--out", str(tmp_path / "g")])
    assert grid.exit_code == 2 and "2-D latent space" in grid.stderr
    assert "medvae train vae --data mnist" in load_model(model)[1].training["command"]


# ---------------------------------------------------------------- evaluation
def test_metrics_behave():
    from medvae.metrics import frechet_distance, laplacian_variance, psnr, ssim

    x = torch.rand(4, 1, 28, 28)
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert (psnr(x, x) > 80).all() or torch.isinf(psnr(x, x)).all()
    assert (psnr(noisy, x) < psnr((x + 0.01 * torch.randn_like(x)).clamp(0, 1), x)).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(4))
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert (laplacian_variance(blurred) < laplacian_variance(x)).all()
    assert laplacian_variance(torch.rand(2, 1, 8, 8, 8)).shape == (2,)
    a = torch.randn(400, 6)
    assert frechet_distance(a, a) < 1e-6 and frechet_distance(a, a + 1.0) == pytest.approx(6.0, rel=1e-6)


def test_evaluate_generative_on_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVAE_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "m.safetensors"
    assert runner.invoke(app, ["train", "vae", "--data", "mnist", "--limit", "300", "--epochs", "1", "--out",
                               str(model), "--no-progress", "--device", "cpu"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "generative", str(model), "--limit", "200", "--samples", "200",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert "training the digit classifier for the Fréchet distance once" in result.stderr  # the long step, said
    import json

    r = json.loads(result.stdout)  # notes go to stderr: stdout is the JSON alone
    assert r["images"] == 200 and r["samples"] == 200 and r["classifier_test_accuracy"] > 0.9
    assert 5 < r["psnr"] < 40 and 0 < r["ssim"] < 1 and r["neg_elbo"] == pytest.approx(r["recon_nll"] + r["kl"])
    # an untrained model's samples are further from real digits than real digits are from each other
    assert r["frechet_distance"] > r["frechet_distance_train_vs_test"]
    assert (tmp_path / "cache").is_dir()  # the classifier is cached for the next evaluation
    text = runner.invoke(app, ["evaluate", "generative", str(model), "--limit", "100", "--no-progress"])
    assert "Fréchet distance" in text.stdout and "PSNR" in text.stdout
    assert "training the digit classifier" not in text.stderr  # cached
    assert "note: evaluating 100 held-out images and drawing 100 samples" in text.stderr


def test_evaluate_generative_on_a_folder(tmp_path, mixed_folder):
    model = tmp_path / "m.safetensors"
    runner.invoke(app, ["train", "vaegan", "--data", str(mixed_folder), "--size", "16", "--channels", "8,16",
                        "--epochs", "1", "--out", str(model), "--no-progress", "--device", "cpu"])
    result = runner.invoke(app, ["evaluate", "generative", str(model), "--data", str(mixed_folder), "--json"])
    assert result.exit_code == 0, result.output
    import json

    r = json.loads(result.stdout)
    # the training folder: only the image training held out (10% of 12) is scored, and the report says so
    assert r["images"] == 1 and "held-out validation" in r["note"] and r["kind"] == "vae_gan"
    assert "frechet_distance" not in r
    other = tmp_path / "other"
    shutil.copytree(mixed_folder, other)
    r = json.loads(runner.invoke(app, ["evaluate", "generative", str(model), "--data", str(other), "--json"]).stdout)
    assert r["images"] == 12 and "note" not in r


def test_discriminator_step_is_one_adam_step_on_its_own_loss():
    """The loop's discriminator update equals Adam(beta1 0.5) on discriminator_loss alone: the generator
    step's gradients in the discriminator are cleared first."""
    from medvae.train.loop import _discriminator_step
    from medvae.train.optim import adam as _adam, flatten_parameters

    torch.manual_seed(0)
    model = small(VAEGAN, adv_warmup_epochs=0)
    reference = small(VAEGAN, adv_warmup_epochs=0)
    reference.load_state_dict(model.state_dict())
    batch = {"image": torch.rand(4, 1, 16, 16)}
    torch.manual_seed(1)
    model.loss(batch).loss.backward()  # the generator step leaves gradients in the discriminator
    opt = _adam(flatten_parameters(model.discriminator), 1e-3, torch.device("cpu"), betas=(0.5, 0.999))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    _discriminator_step(model, batch, opt, scaler, torch.device("cpu"), None)
    reference._fakes = model._fakes
    ref_opt = torch.optim.Adam(reference.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    reference.discriminator_loss(batch).loss.backward()
    ref_opt.step()
    for a, b in zip(model.discriminator.parameters(), reference.discriminator.parameters()):
        torch.testing.assert_close(a, b)


def test_generated_files_say_synthetic_and_invent_no_pixel_size(tmp_path, mixed_folder):
    import pydicom

    model = tmp_path / "m.safetensors"
    runner.invoke(app, ["train", "vae", "--data", str(mixed_folder), "--size", "16", "--channels", "8,16",
                        "--epochs", "1", "--out", str(model), "--no-progress", "--device", "cpu"])
    assert load_model(model)[1].preprocessing["spacing"] is None  # PNGs give no pixel size
    runner.invoke(app, ["generate", str(model), "--n", "1", "--out", str(tmp_path / "p")])
    assert "synthetic" in PILImage.open(tmp_path / "p" / "sample_0001.png").text["Description"]
    runner.invoke(app, ["generate", str(model), "--n", "1", "--format", "dcm", "--out", str(tmp_path / "d")])
    assert "PixelSpacing" not in pydicom.dcmread(tmp_path / "d" / "sample_0001.dcm")


def test_volumes_are_turned_to_ras_before_training(tmp_path):
    from medvae.data.datasets import load_image_folder

    vol = np.zeros((8, 8, 8), np.float32)
    vol[1, 4, 4] = 1.0  # near the low x index
    for name, affine in (("ras", np.diag([2.0, 2.0, 2.0, 1.0])), ("las", np.diag([-2.0, 2.0, 2.0, 1.0]))):
        folder = tmp_path / name
        folder.mkdir()
        data = vol if name == "ras" else vol[::-1]  # the same world image stored mirrored, with a flipped affine
        nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), folder / "v.nii.gz")
    a = load_image_folder(tmp_path / "ras", 8, 3, normalize="minmax").images
    b = load_image_folder(tmp_path / "las", 8, 3, normalize="minmax").images
    torch.testing.assert_close(a, b)


def test_the_demo_conv_model_generates_upright_digits(tmp_path):
    from medvae.tasks.demo import run_mnist_demo

    run_mnist_demo(out=tmp_path / "demo", model="conv", epochs=1, limit=200, nll_k=2, nll_images=10, grid_size=2,
                   progress=False, device="cpu")
    runner.invoke(app, ["generate", str(tmp_path / "demo" / "model.safetensors"), "--n", "2", "--out",
                        str(tmp_path / "g")])
    model, _ = load_model(tmp_path / "demo" / "model.safetensors")
    z = torch.randn(2, model.latent_dim, generator=torch.Generator().manual_seed(0))
    expected = np.round(model.generate(z)[0, 0].numpy() * 255)  # the demo's (rows, cols) image
    written = np.asarray(PILImage.open(tmp_path / "g" / "sample_0001.png")).astype(float)
    np.testing.assert_allclose(written, expected, atol=1)
    refused = runner.invoke(app, ["evaluate", "generative", str(tmp_path / "demo" / "model.safetensors")])
    assert refused.exit_code == 2 and "metrics.json" in refused.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "vae", "--data", "mnist", "--size", "4"], "at least"),
    (["train", "vae", "--data", "mnist", "--out", "."], "give a model file name"),
])
def test_more_usage_errors(args, message):
    result = runner.invoke(app, args + ["--no-progress"])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_evaluate_and_generate_usage_errors(tmp_path):
    model = tmp_path / "v3.safetensors"
    from medvae.checkpoint import save_model as save

    save(model, small(ConvVAE, 3), preprocessing={"size": [16] * 3, "axes": "(C, x, y, z)", "spacing": None})
    three_d = runner.invoke(app, ["evaluate", "generative", str(model)])
    assert three_d.exit_code == 2 and "mnist is 2-D" in three_d.stderr
    bad = runner.invoke(app, ["evaluate", "generative", str(model), "--samples", "-5"])
    assert bad.exit_code == 2 and "--samples must be a positive integer" in bad.stderr
    (tmp_path / "afile").write_text("x")
    gen = runner.invoke(app, ["generate", str(model), "--format", "nii", "--out", str(tmp_path / "afile")])
    assert gen.exit_code == 2 and "is a file" in gen.stderr


def test_ssim_on_images_smaller_than_its_window():
    from medvae.metrics import ssim

    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))


# ---------------------------------------------------------------- the command-line grammar
def test_generate_skips_an_existing_set_with_a_note_and_overwrite_redoes_it(tmp_path):
    model = tmp_path / "v.safetensors"
    save_model(model, small(ConvVAE), preprocessing={"size": [16, 16], "axes": "(C, x, y)", "spacing": None})
    out = tmp_path / "g"
    first = runner.invoke(app, ["generate", str(model), "--n", "3", "--out", str(out), "--device", "cpu"])
    assert first.exit_code == 0, first.output
    before = (out / "sample_0001.png").read_bytes()
    again = runner.invoke(app, ["generate", str(model), "--n", "3", "--seed", "5", "--out", str(out)])
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.strip() == f"note: {out}: the image set exists; skipped (--overwrite redoes it)"
    assert (out / "sample_0001.png").read_bytes() == before
    # --overwrite redoes the set, and no image of an earlier, larger run is left behind
    redo = runner.invoke(app, ["generate", str(model), "--n", "2", "--seed", "5", "--out", str(out),
                               "--overwrite"])
    assert redo.exit_code == 0, redo.output
    assert sorted(p.name for p in out.glob("sample_*.png")) == ["sample_0001.png", "sample_0002.png"]
    assert (out / "sample_0001.png").read_bytes() != before


def test_evaluate_generative_has_the_evaluate_options():
    text = runner.invoke(app, ["evaluate", "generative", "--help"], terminal_width=200).stdout
    for option in ("--json", "--limit", "--progress", "--no-progress", "--device"):
        assert option in text, option
