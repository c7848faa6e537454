import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from medvae_cli.main import app

runner = CliRunner()
QUICK = ["--limit", "200", "--epochs", "2", "--nll-k", "20", "--grid-size", "4", "--no-progress", "--device", "cpu"]


def test_help_does_not_import_torch_or_monai():
    code = ("import sys; from typer.testing import CliRunner; from medvae_cli.main import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "bad = [m for m in ('torch', 'monai') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = runner.invoke(app, ["demo", "mnist", "--out", str(out), *QUICK])
    return out, result


def test_demo_end_to_end_writes_everything(demo_run):
    out, result = demo_run
    assert result.exit_code == 0, result.output
    for name in ("latent.png", "sample.png", "manifold.png", "loss.png", "model.safetensors", "metrics.json"):
        assert (out / name).stat().st_size > 0, name
    m = json.loads((out / "metrics.json").read_text())
    t = m["test"]
    assert m["epochs"] == 2 and m["train_images"] == 200 and m["test_images"] == 200
    assert t["neg_elbo"] == pytest.approx(t["recon"] + t["kl"], rel=1e-5)
    assert 0 < t["nll_importance_sampled"] <= t["neg_elbo"] + 1.0
    assert m["samples_per_second"] > 0 and m["seconds"] > 0 and len(m["train_loss"]) == 2
    assert "-ELBO" in result.output and "images/s" in result.output
    assert "note: estimating the NLL of 200 test images with 20 importance samples each" in result.stderr
    assert "note:" not in result.stdout
    # the steps before the first epoch are announced only where progress is shown
    assert ("note: reading the MNIST digits" in result.stderr) == ("--no-progress" not in QUICK)
    assert not list(out.glob(".*part*"))


def test_info_describes_the_demo_model(demo_run):
    out, _ = demo_run
    result = runner.invoke(app, ["info", str(out / "model.safetensors")])
    assert result.exit_code == 0, result.output
    assert "kind mlp_vae" in result.output and "latent_dim=2" in result.output and "epochs: 2" in result.output
    result = runner.invoke(app, ["info", "--json", str(out / "model.safetensors")])
    assert json.loads(result.output)["training"]["train_images"] == 200


def test_resume_adds_epochs(demo_run, tmp_path):
    first = json.loads((demo_run[0] / "metrics.json").read_text())
    out = tmp_path / "copy"
    shutil.copytree(demo_run[0], out)
    result = runner.invoke(app, ["demo", "mnist", "--out", str(out), *QUICK[:2], "--epochs", "3", *QUICK[4:],
                                 "--resume"])
    assert result.exit_code == 0, result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 3 and m["train_loss"][:2] == first["train_loss"]  # epochs 1-2 kept, not retrained
    info = json.loads(runner.invoke(app, ["info", "--json", str(out / "model.safetensors")]).output)
    assert info["training"]["resumed_at_epoch"] == 2 and info["training"]["train_samples"] == 3 * 200


def test_resume_without_a_state_is_bad_usage(tmp_path):
    result = runner.invoke(app, ["demo", "mnist", "--out", str(tmp_path), *QUICK, "--resume"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --resume: no training state at") and not list(tmp_path.iterdir())


def test_conv_model_without_mixed_precision(tmp_path):
    result = runner.invoke(app, ["demo", "mnist", "--out", str(tmp_path), "--model", "conv", "--no-amp", *QUICK])
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == "conv_vae" and m["amp"] == "off"


def test_same_seed_same_model_and_metrics(tmp_path):
    runs = []
    for name in ("a", "b"):
        result = runner.invoke(app, ["demo", "mnist", "--out", str(tmp_path / name), "--seed", "7", *QUICK])
        assert result.exit_code == 0, result.output
        m = json.loads((tmp_path / name / "metrics.json").read_text())
        runs.append((m["test"], m["train_loss"], load_file(str(tmp_path / name / "model.safetensors"))))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert all(torch.equal(runs[0][2][k], runs[1][2][k]) for k in runs[0][2])  # identical weights


def test_reads_a_data_folder(tmp_path, mnist_dir):
    result = runner.invoke(app, ["demo", "mnist", "--data", str(mnist_dir), "--out", str(tmp_path), *QUICK])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "metrics.json").read_text())["train_images"] == 64


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "/no/such/folder"], "--data /no/such/folder: no such folder"),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--batch-size", "-5"], "--batch-size must be a positive integer, got -5"),
        (["--point", "1,2,3"], "--point '1,2,3': expected 2"),
        (["--model", "rnn"], "--model must be one of mlp, conv"),
        (["--latent-dim", "1"], "--latent-dim must be at least 2"),
        (["--lr", "inf"], "--lr must be a positive, finite number, got inf"),
        (["--hidden", "abc"], "--hidden 'abc': expected comma-separated integers"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args, message, tmp_path):
    result = runner.invoke(app, ["demo", "mnist", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {message}" or result.stderr.strip().startswith(f"error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_folder_without_idx_files(tmp_path):
    result = runner.invoke(app, ["demo", "mnist", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no MNIST IDX files found" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "demo", "mnist", "--epochs", "0", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError) and "epochs" in str(result.exception)


def test_info_on_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad}: neither an image medvae reads") and len(result.stderr.splitlines()) == 1


def test_torchrun_two_cpu_processes(tmp_path):
    """DistributedDataParallel over gloo: two ranks share the data, only rank 0 writes."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "medvae", "demo", "mnist", "--out", str(out), *QUICK]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["epochs"] == 2
    assert proc.stdout.count("wrote ") == 1  # one summary: rank 1 writes and prints nothing
    info = json.loads(subprocess.run([sys.executable, "-m", "medvae", "info", "--json", str(out / "model.safetensors")],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["training"]["train_samples"] == 2 * 200  # both ranks' samples, each epoch's data once


# ---------------------------------------------------------------------------------- the command-line grammar
def _commands():
    """Every command as (name, click command): 'convert', 'train segment', ..."""
    import typer

    def walk(group, prefix):
        for name, command in group.commands.items():
            full = f"{prefix} {name}".strip()
            if hasattr(command, "commands"):
                yield from walk(command, full)
            else:
                yield full, command

    return dict(walk(typer.main.get_command(app), ""))


def _options(command) -> dict[str, object]:
    """Option spelling -> its parameter, the visible ones only."""
    return {opt: p for p in command.params if p.param_type_name == "option" and not p.hidden
            for opt in (*p.opts, *p.secondary_opts)}


WRITERS = ["convert", "enhance", "segment", "synthesize", "score", "generate", "phantom brain", "phantom cxr", "demo mnist",
           "train vae", "train vaegan", "train cvaegan", "train synthesis", "train enhance", "train segment",
           "oversample"]


def test_every_command_that_writes_has_overwrite_and_every_train_command_tensorboard():
    commands = _commands()
    assert set(WRITERS) | {"info"} | {c for c in commands if c.startswith("evaluate ")} == set(commands)
    for name in WRITERS:
        assert "--overwrite" in _options(commands[name]), name
        assert "--no-overwrite" not in _options(commands[name]), name
    for name in (c for c in commands if c.startswith("train ")):
        options = _options(commands[name])
        assert "--tensorboard" in options and options["--tensorboard"].default is None, name
        assert "--data" in options and "--out" in options, name


def test_files_in_files_out_take_positional_input_output_and_makers_take_out():
    commands = _commands()
    for name, args in (("convert", ["input", "output"]), ("enhance", ["input", "output"]),
                       ("segment", ["input", "output"]), ("synthesize", ["model", "input", "output"]),
                       ("score", ["model", "input", "output"])):
        assert [p.name for p in commands[name].params if p.param_type_name == "argument"] == args, name
        assert "--out" not in _options(commands[name]) and "--input" not in _options(commands[name]), name
    for name in ("generate", "phantom brain", "phantom cxr", "demo mnist"):
        assert "--out" in _options(commands[name]), name
    for name in ("generate", "phantom brain", "phantom cxr"):
        assert "--n" in _options(commands[name]) and "--subjects" not in _options(commands[name]), name


def test_every_evaluate_command_has_json_limit_progress_and_the_shared_device():
    from medvae_cli._options import DEFAULT_DEVICE

    commands = _commands()
    evaluates = [c for c in commands if c.startswith("evaluate ")]
    assert sorted(evaluates) == ["evaluate anomaly", "evaluate chest-check", "evaluate enhance", "evaluate generative",
                                 "evaluate oversampling", "evaluate segment", "evaluate synthesis"]
    for name in evaluates:
        options = _options(commands[name])
        for option in ("--json", "--limit", "--progress", "--no-progress", "--device"):
            assert option in options, (name, option)
    runs_a_model = [c for c in commands if c not in ("convert", "info", "phantom brain", "phantom cxr")]
    for name in runs_a_model:
        device = _options(commands[name]).get("--device")
        assert device is not None and device.default == DEFAULT_DEVICE == "auto", name
    assert not any("--device" in _options(commands[c]) for c in ("convert", "info", "phantom brain", "phantom cxr"))


def test_an_existing_output_is_a_note_and_exit_0():
    """run_task prints OutputExists as one 'note:' line on stderr, exit code 0, with or without --debug."""
    import typer

    from medvae.errors import OutputExists
    from medvae_cli._run import run_task, state

    def make(path):
        raise OutputExists(path, "thing")

    little = typer.Typer()

    @little.command()
    def one(path: str) -> None:
        run_task(make, path)
        typer.echo("not reached")

    for debug in (False, True):
        state.debug = debug
        try:
            result = CliRunner().invoke(little, ["here.x"])
        finally:
            state.debug = False
        assert result.exit_code == 0 and result.stdout == ""
        assert result.stderr == "note: here.x: the thing exists; skipped (--overwrite redoes it)\n"


def test_demo_skips_an_existing_model_with_a_note_unless_overwrite(demo_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(demo_run[0], out)
    before = (out / "model.safetensors").read_bytes()
    again = runner.invoke(app, ["demo", "mnist", "--out", str(out), *QUICK])
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.strip().startswith(f"note: {out / 'model.safetensors'}: ")
    assert "--overwrite redoes it" in again.stderr and (out / "model.safetensors").read_bytes() == before
    redo = runner.invoke(app, ["demo", "mnist", "--out", str(out), *QUICK, "--seed", "3", "--overwrite"])
    assert redo.exit_code == 0, redo.output
    assert (out / "model.safetensors").read_bytes() != before


def test_the_help_of_every_command_imports_neither_torch_nor_monai():
    code = ("import sys; from typer.testing import CliRunner; from medvae_cli.main import app; r = CliRunner(); "
            f"names = {sorted(_commands())!r}; "
            "bad = [n for n in names if r.invoke(app, [*n.split(), '--help']).exit_code != 0]; assert not bad, bad; "
            "bad = [m for m in ('torch', 'monai') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_command_that_runs_a_model_has_threads_and_it_reaches_torch(demo_run, tmp_path):
    commands = _commands()
    no_model = ("convert", "info", "phantom brain", "phantom cxr")
    for name in commands:
        assert ("--threads" in _options(commands[name])) == (name not in no_model), name
    out, _ = demo_run
    before, before_interop = torch.get_num_threads(), torch.get_num_interop_threads()
    try:
        result = runner.invoke(app, ["generate", str(out / "model.safetensors"), "--out", str(tmp_path / "g"),
                                     "--n", "2", "--device", "cpu", "--threads", "1"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        result = runner.invoke(app, ["generate", str(out / "model.safetensors"), "--out", str(tmp_path / "g"),
                                     "--n", "2", "--device", "cpu", "--overwrite"])
        assert result.exit_code == 0, result.output
        from medvae.train.device import default_threads

        assert torch.get_num_threads() == default_threads()
        result = runner.invoke(app, ["generate", str(out / "model.safetensors"), "--threads", "0"])
        assert result.exit_code == 2
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_interop_threads() == before_interop  # set once before torch used it, never again


def test_default_threads_is_one_per_process_under_torchrun(monkeypatch):
    from medvae.train.device import default_threads, physical_cores

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert default_threads() == 1
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert default_threads() == physical_cores() >= 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # what the user chose for the process wins
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert default_threads() == physical_cores()


def test_counts_are_pluralised():
    from medvae.errors import count

    assert (count(1, "epoch"), count(2, "epoch"), count(0, "image")) == ("1 epoch", "2 epochs", "0 images")
    assert count(1, "held-out image") == "1 held-out image" and count(3, "child", "children") == "3 children"


def test_the_loss_figure_names_the_curves_as_the_epoch_lines_do(tmp_path, monkeypatch):
    """The epoch lines say 'val loss', so loss.png's legend says val (not test)."""
    from medvae import viz

    shown = []
    monkeypatch.setattr(viz, "_save", lambda fig, path: shown.append(
        [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]))
    viz.loss_curve([3.0, 2.0], [2.5, 2.1], tmp_path / "loss.png")
    assert shown == [["train", "val"]]


@pytest.mark.slow
def test_the_default_demo_gives_the_readme_numbers(tmp_path):
    """`medvae demo mnist` at its defaults (all 1,000 test digits, k = 1000 for the NLL: minutes on 2 cores)
    lands near the numbers README quotes from docs/figures/metrics.json."""
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "mnist", "--out", str(out), "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    t = json.loads((out / "metrics.json").read_text())["test"]
    readme = json.loads((Path(__file__).parents[1] / "docs" / "figures" / "metrics.json").read_text())["test"]
    assert t["nll_images"] == 1000 and t["nll_k"] == 1000
    assert t["neg_elbo"] == pytest.approx(readme["neg_elbo"], abs=3.0)
    assert t["nll_importance_sampled"] == pytest.approx(readme["nll_importance_sampled"], abs=3.0)
    assert t["nll_importance_sampled"] < t["neg_elbo"]


# ---------------------------------------------------------------------------------- help that reads well
def test_no_flag_shows_a_value_type_in_any_help():
    for name in ["", *_commands()]:
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "<bool>" not in result.output, name


def test_debug_is_a_flag_not_a_value():
    result = runner.invoke(app, ["--debug", "true"])
    assert result.exit_code != 0  # 'true' is not a command: --debug takes no value, and its help says so
    assert "--debug " in runner.invoke(app, ["--help"]).output


def test_train_vae_offers_only_vae_options_and_vaegan_groups_its_own():
    vae = runner.invoke(app, ["train", "vae", "--help"]).output
    assert "--adv-weight" not in vae and "--feature-weight" not in vae and "--adv-warmup" not in vae
    assert "VAE-GAN" not in vae
    vaegan = runner.invoke(app, ["train", "vaegan", "--help"]).output
    assert "VAE-GAN" in vaegan and "--adv-weight" in vaegan
    result = runner.invoke(app, ["train", "vae", "--data", "mnist", "--adv-weight", "1"])
    assert result.exit_code == 2 and "--adv-weight" in result.output


def _flat(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum() or ch in ",:[]")


def test_a_long_default_is_shown_whole():
    default = "[default: noise,blur,contrast,grid,exposure]"
    narrow = runner.invoke(app, ["train", "enhance", "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": ""}).output
    assert "…" not in narrow  # folded onto the next line where the column is narrow, never cut
    assert _flat(default) in _flat(narrow)
    wide = runner.invoke(app, ["train", "enhance", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": ""}).output
    assert default in wide


def test_help_paragraphs_flow_to_the_terminal_width():
    from medvae_cli._help import flow

    assert flow("one\ntwo\n\n  three\n  four") == "one two\n\nthree four"
    assert flow("\bkeep\nlines") == "\bkeep\nlines"
    wide = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": ""}).output
    assert "is left alone, with a note, unless --overwrite; a run killed" in wide  # the docstring's hard break is gone


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _slow_module(folder, name: str, seconds: float) -> None:
    (folder / f"{name}.py").write_text(f"import time\ntime.sleep({seconds})\n")


def test_a_slow_import_says_what_it_loads_on_a_terminal_only(tmp_path, monkeypatch):
    from medvae_cli._run import import_with_note

    monkeypatch.syspath_prepend(str(tmp_path))
    _slow_module(tmp_path, "medvae_slow_a", 1.0)
    _slow_module(tmp_path, "medvae_slow_b", 1.0)
    _slow_module(tmp_path, "medvae_fast_c", 0.0)
    terminal, pipe, quick = _Terminal(), io.StringIO(), _Terminal()
    # margins wide enough for a busy machine: 0.1 s against a 1 s import, 3 s against an instant one
    import_with_note("medvae_slow_a", "Slow A", after=0.1, stream=terminal)
    import_with_note("medvae_slow_b", "Slow B", after=0.1, stream=pipe)
    import_with_note("medvae_fast_c", "Fast C", after=3.0, stream=quick)
    assert terminal.getvalue() == "loading Slow A ...\n"
    assert pipe.getvalue() == "" and quick.getvalue() == ""
    assert {"medvae_slow_a", "medvae_slow_b", "medvae_fast_c"} <= set(sys.modules)


def test_demo_says_what_it_does_before_its_first_epoch(tmp_path):
    quick = [a for a in QUICK if a != "--no-progress"]
    result = runner.invoke(app, ["demo", "mnist", "--out", str(tmp_path / "d"), *quick, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    reading = result.stderr.index("note: reading the MNIST digits through the MONAI pipeline")
    assert reading < result.stderr.index("epoch 1/1")
