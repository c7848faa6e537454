"""What the chest X-ray trainers return: the model file, its training record and the films on each side of
the split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainedFilmModel:
    """Returned by ``train_enhance`` and ``train_segment`` (on the process that writes files)."""

    model_path: Path
    record: dict
    train_images: list[str] = field(default_factory=list)
    test_images: list[str] = field(default_factory=list)
