"""The one training recipe every medvae task follows, and what it records.

A task (``train vae``, ``train segment``, the MNIST demo, ...) builds its config with :func:`configure`, opens a
:class:`Recipe` before it reads any data (the model path is checked, an existing model file is left alone
unless ``overwrite`` or ``resume``, every generator is seeded), splits its data, and hands the model and its
data to :meth:`Recipe.fit`, which runs :func:`medvae.train.fit` with the state file beside the model, saves the
model file after every epoch and once more at the end (rank 0 only), writes the preview images, and returns
the record. The rest of this module turns a config into what a model file records: the reproducing command
line and plain values, with no machine's own folders.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from medvae.errors import OutputExists, UsageError
from medvae.train.config import TRAIN_FIELDS

# TrainConfig fields a recorded command line leaves out: how the run was watched, not what it trained
UNRECORDED = ("progress", "resume", "overwrite", "state_path", "tensorboard", "previews", "num_workers")


def configure(cls, config=None, **overrides):
    """``config`` (or ``cls()``) with ``overrides`` applied: a task's own fields by name, and the fields of
    its nested :class:`~medvae.train.config.TrainConfig` (``epochs``, ``device``, ...) by theirs."""
    own = {k: v for k, v in overrides.items() if k not in TRAIN_FIELDS}
    loop = {k: v for k, v in overrides.items() if k in TRAIN_FIELDS}
    config = dataclasses.replace(config, **own) if config is not None else cls(**own)
    if loop:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, **loop))
    return config


class Recipe:
    """One training run of a task whose config nests ``train`` (a TrainConfig).

    Args:
        config: the task's config.
        model_path: the ``.safetensors`` file the run writes.
        state_path: the resumable state (default ``<model stem>.state.pt`` beside it).
    Raises:
        UsageError: ``model_path`` is a folder or not a ``.safetensors`` name.
        OutputExists: the model file exists and neither ``overwrite`` nor ``resume`` was given.
    """

    def __init__(self, config, model_path: Path, state_path: Path | None = None) -> None:
        from medvae.train.device import seed_everything

        check_model_path(model_path)
        self.config, self.model_path = config, Path(model_path)
        self.stem = self.model_path.with_suffix("")
        self.state_path = state_path or self.model_path.with_suffix(".state.pt")
        if self.model_path.exists() and not (config.train.overwrite or config.train.resume):
            raise OutputExists(self.model_path, "model file")
        if config.train.resume and not self.state_path.is_file():
            raise UsageError(f"resume: no training state at {self.state_path} to resume from; run without "
                             "--resume to start afresh", param="resume")
        self.started = time.perf_counter()
        seed_everything(config.train.seed)

    def fit(self, model, train_data, val_data, save: Callable[..., None], *,
            previews: Callable[[object], dict] | None = None) -> dict | None:
        """Train ``model`` (see :func:`medvae.train.fit`) and return its record with ``wall_seconds``, on the
        process that writes files (None on other ``torchrun`` ranks).

        ``save(model, record, final)`` writes the model file: after every epoch (``final`` False) and once at
        the end (True; also after a ``resume`` that found every epoch done). ``previews(model)`` returns
        name → image in [0, 1] (see :func:`medvae.viz.tile`): written as ``<stem>.<name>.png`` after each
        epoch unless ``previews`` is off, and logged to TensorBoard where that is on.
        """
        from medvae.train import fit, is_main_process
        from medvae.train.loop import preview_images
        from medvae.viz import write_png

        settings = dataclasses.replace(self.config.train, state_path=self.state_path)
        logged: dict = {}

        def for_tensorboard(m):  # kept, so the PNG files of the same epoch do not draw them again
            logged["images"] = previews(m)
            return logged["images"]

        def on_epoch_end(epoch, m, record):
            save(m, record, False)
            if previews is not None and settings.previews:
                images = logged.pop("images", None)
                for name, image in (images if images is not None else preview_images(m, previews)).items():
                    write_png(image, f"{self.stem}.{name}.png")

        record = fit(model, train_data, val_data, settings, on_epoch_end=on_epoch_end,
                     previews=for_tensorboard if previews is not None else None)
        if not is_main_process():
            return None
        save(model, record, True)
        return {**record.to_dict(), "wall_seconds": time.perf_counter() - self.started}


def check_model_path(out: Path) -> None:
    """Refuse an output that is a folder or not a ``.safetensors`` file name."""
    if Path(out).is_dir() or Path(out).suffix != ".safetensors":
        raise UsageError(f"out {out}: give a model file name ending in .safetensors", param="out")


def changed_options(config, defaults, skip: tuple[str, ...]) -> list[str]:
    """``--name value`` for each field of the dataclass ``config`` that differs from ``defaults`` (the fields
    of its nested ``train`` config too, but for :data:`UNRECORDED`).

    Booleans become ``--name`` / ``--no-name``, tuples ``--name a,b`` and paths their file name; fields in
    ``skip`` are left out.
    """
    parts = []
    for f in dataclasses.fields(config):
        if f.name in skip:
            continue
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        if f.name == "train":
            parts += changed_options(value, default, UNRECORDED)
        elif value != default:
            name = f.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(f"--{name}" if value else f"--no-{name}")
            else:
                # a model file is named, not where it lay: the record holds no machine's own folders
                text = (",".join(map(str, value)) if isinstance(value, tuple) else
                        value.name if isinstance(value, Path) else str(value))
                parts.append(f"--{name} {shlex.quote(text)}")
    return parts


def plain_config(config) -> dict:
    """The dataclass ``config`` as JSON-ready values, its ``train`` fields at the top level beside its own
    (paths by file name, as :func:`changed_options` has them): what a model file records, and what
    :func:`configure` takes back."""
    values = dataclasses.asdict(config)
    values.update(values.pop("train", {}))
    return {k: v.name if isinstance(v, Path) else v for k, v in values.items()}


def portable_command(command: str) -> str:
    """A recorded command line with every absolute path cut to its file name (older model files kept them)."""
    return " ".join(Path(t).name if t.startswith("/") else t for t in command.split(" "))


def portable_path(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """``path`` relative to the data folder ``root`` (or its file name when outside it): what a model file
    records of its training images, so no machine's own folders end up in it."""
    path, root = Path(path).resolve(), Path(root).resolve()
    root = root if root.is_dir() else root.parent
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
