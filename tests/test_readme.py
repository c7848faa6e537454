"""The README is executable: its shell examples run, in order, in a fresh folder.

The test reads every fenced ```bash block of README.md, in document order, and runs each ``medvae``
command in one scratch folder (``tmp_path``) with ``sample_data/`` reachable as ``./sample_data`` (a
symlink to the repository's), so later examples use what earlier ones wrote (``phantom brain`` makes
``brains/``, ``train synthesis --data brains/`` reads it). An example that fails, or that needs a step
the README does not state, fails the test.

Rules:

* **Parsing.** Lines ending in ``\\`` are joined; a line (after joining) that starts with ``#`` is a
  comment; elsewhere, what follows `` #`` is the example's comment, and the code before it is split at
  ``&&`` into commands, each split into words with ``shlex``.
* **Optional arguments.** A bracketed group such as ``[--format png|nii|dcm]`` or ``[--seed 1]``
  shows an option one may add; it is dropped (the command runs without it).
* **Skipped, set-up.** ``pip install ...`` (the test runs inside the installed environment) and
  ``python -m pytest`` (it would run this test again).
* **Skipped, needs data.** A command whose trailing comment contains ``needs: <what>`` uses data a
  fresh clone lacks (your own scans, the full chest data sets a clone does not hold, a model an unshown
  step makes); the README says so to the reader too. A command with an ``<angle-bracket>``
  placeholder outside its comment is skipped for the same reason. Every other command must run: a
  new example that reads a file nobody made fails here until it is made runnable (from
  ``sample_data/``, preferably) or marked.
* **Speed.** Heavy options are rewritten for the test only, by :data:`OVERRIDES` (command -> options
  set or replaced: one epoch, a few images, ``--no-progress``, ``--device cpu``, 2 threads, tiny
  phantoms); the README shows the real settings.
* **Exit status.** Each command must exit 0, or N where its comment says ``exits N``.
* **How.** Each command is run in-process through ``medvae_cli.main.app`` (what the ``medvae`` script
  calls) with typer's ``CliRunner``: a subprocess per command would spend ~5 s each importing torch.
"""
from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_FAST = {"--no-progress": None, "--device": "cpu"}
_THREADS = {"--threads": "2"}
#: (command words) -> {option: value or None for a flag}; set when absent, replaced when present.
OVERRIDES: dict[tuple[str, ...], dict[str, str | None]] = {
    ("demo", "mnist"): {"--epochs": "1", "--limit": "200", "--nll-images": "10", "--nll-k": "2",
                        **_FAST, **_THREADS},
    ("train", "vae"): {"--epochs": "1", "--limit": "200", **_FAST, **_THREADS},
    ("train", "vaegan"): {"--epochs": "1", "--limit": "200", **_FAST, **_THREADS},
    ("train", "cvaegan"): {"--epochs": "1", **_FAST, **_THREADS},
    ("evaluate", "oversampling"): {"--seeds": "1", "--classifier-epochs": "1", "--generator-epochs": "1",
                                   "--ratios": "1", "--no-balance": None, "--samplers": "random,cvaegan",
                                   "--limit": "100",
                                   **_FAST, **_THREADS},
    ("train", "synthesis"): {"--epochs": "1", "--limit": "3", "--channels": "4,8", "--spacing": "8,8,8",
                             **_FAST},
    ("train", "segment"): {"--epochs": "1", "--size": "64", "--channels": "4,8", **_FAST, **_THREADS},
    ("train", "enhance"): {"--epochs": "1", "--patches-per-epoch": "4", **_FAST, **_THREADS},
    ("generate",): {"--n": "2", "--grid-size": "3", "--steps": "2", "--device": "cpu", **_THREADS},
    ("phantom", "brain"): {"--n": "3", "--no-progress": None},
    ("phantom", "cxr"): {"--n": "2", "--size": "64", "--no-progress": None},
    ("synthesize",): {"--samples": "2", **_FAST},
    ("evaluate", "synthesis"): {"--samples": "2", "--limit": "1", **_FAST},
    ("convert",): {"--no-progress": None},
}
# ``phantom brain --n 3``: the synthesis example reads brains/sub-003.

SUBCOMMANDS = {"demo", "train", "evaluate", "phantom"}


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def commands(text: str) -> list[tuple[str, str]]:
    """Each README shell command in order, as (source line, comment)."""
    out = []
    for block in bash_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            code, _, comment = line.partition(" #")
            for part in code.split("&&"):
                out.append((part.strip(), comment.strip()))
    return out


def _drop_optional(code: str) -> str:
    return re.sub(r"\s*\[[^\]]*\]", "", code)


def _apply(argv: list[str]) -> list[str]:
    key = tuple(argv[1:3]) if argv[1] in SUBCOMMANDS else (argv[1],)
    argv = list(argv)
    for option, value in OVERRIDES.get(key, {}).items():
        if option in argv:
            i = argv.index(option)
            if value is not None:
                argv[i + 1] = value
        else:
            argv += [option] if value is None else [option, value]
    return argv


def plan(text: str) -> list[tuple[str, list[str] | None, str]]:
    """(README command, argv to run or None, why skipped / expected exit) for every command."""
    steps = []
    for code, comment in commands(text):
        words = shlex.split(code)
        if words[:2] == ["pip", "install"] or "pytest" in words:
            steps.append((code, None, "set-up: the test runs in the installed environment"))
        elif re.search(r"\bneeds:", comment):
            steps.append((code, None, comment[comment.index("needs:"):]))
        elif re.search(r"<[^>]+>", code):
            steps.append((code, None, "placeholder"))
        else:
            assert words[0] == "medvae", f"README example is not a medvae command: {code}"
            exits = re.search(r"\bexits (\d+)", comment)
            steps.append((code, _apply(shlex.split(_drop_optional(code))), exits.group(1) if exits else "0"))
    return steps


def test_readme_plan_runs_most_examples():
    steps = plan(README.read_text())
    assert sum(argv is not None for _, argv, _ in steps) >= 10, "most README examples should run"


def test_plan_rules():
    text = ("```bash\npip install -e . && medvae demo mnist\n# a comment\n"
            "medvae generate m.safetensors --n 64 --out s/ [--seed 1]   # draws\n"
            "medvae convert scans/ pngs/   # a folder; needs: scans/\n"
            "medvae train vae --data mnist \\\n    --epochs 10   # exits 0\n```\n")
    steps = plan(text)
    assert [s[1] is None for s in steps] == [True, False, False, True, False]
    assert steps[2][1] == ["medvae", "generate", "m.safetensors", "--n", "2", "--out", "s/", "--grid-size", "3",
                           "--steps", "2", "--device", "cpu", "--threads", "2"]
    assert steps[3][2] == "needs: scans/"
    assert steps[4][1][:6] == ["medvae", "train", "vae", "--data", "mnist", "--epochs"]
    assert steps[4][1][6] == "1"


def test_readme_examples_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from medvae_cli.main import app

    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    log = []
    for code, argv, expect in plan(README.read_text()):
        if argv is None:
            log.append(f"skip  {code}  ({expect})")
            continue
        start = time.perf_counter()
        result = runner.invoke(app, argv[1:])
        log.append(f"{time.perf_counter() - start:5.1f}s {' '.join(argv)}")
        assert result.exit_code == int(expect), (
            f"README example failed (exit {result.exit_code}, expected {expect}):\n  {code}\n"
            f"ran as: {' '.join(argv)}\n--- output\n{result.output[-4000:]}\n--- exception\n{result.exception!r}")
    print("\n".join(log))
