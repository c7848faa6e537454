"""Errors that medvae reports to people.

Every error a user can cause is a :class:`MedvaeError` whose message is one line naming the file or
parameter and what to do. The command line prints that line and exits with ``exit_code``; the
library raises it like any other exception.
"""

from __future__ import annotations

import math


class MedvaeError(Exception):
    """Base class for errors shown to users as one line (exit code 1: an input failed)."""

    exit_code = 1


class UsageError(MedvaeError, ValueError):
    """A bad argument or option: exit code 2.

    ``param`` names the parameter the message is about, as the library spells it (``"batch_size"``); the
    message starts with that name, and the command line replaces it by the option or argument the user gave
    (``--batch-size``, ``OUTPUT``). A message about no parameter leaves it None.
    """

    exit_code = 2

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class InputError(MedvaeError):
    """An input file or folder that cannot be used: exit code 1."""

    exit_code = 1


class TrainingError(MedvaeError):
    """Training stopped (for example on a non-finite loss): exit code 1."""

    exit_code = 1


def check_positive(name: str, value: float, *, integer: bool = True) -> None:
    """Raise :class:`UsageError` unless ``value`` is a positive number.

    Args:
        name: the parameter's name as the user wrote it (``"epochs"``, ``"batch_size"``).
        value: the value to check.
        integer: whether the value must also be an integer.
    """
    kind = "a positive integer" if integer else "a positive, finite number"
    if integer and (isinstance(value, bool) or int(value) != value):
        raise UsageError(f"{name} must be {kind}, got {value!r}", param=name)
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"{name} must be {kind}, got {value!r}", param=name)


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class OutputExists(MedvaeError):
    """The output a command would write exists and ``overwrite`` was not given: nothing was done.

    Not a failure (exit code 0): the command line prints the message as a note. Every command that writes
    one output (a model, a set of images, a figure folder) raises it the same way; batch commands skip each
    existing output and say so in their report instead.
    """

    exit_code = 0

    def __init__(self, path, what: str = "output") -> None:
        super().__init__(f"{path}: the {what} exists; skipped (--overwrite redoes it)")
        self.path = path


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, pluralised as English does: ``count(1, "epoch")`` is "1 epoch", ``count(2, "epoch")``
    "2 epochs" (``plural`` for irregular nouns). For every message that counts things."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
