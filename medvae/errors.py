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
    """A bad argument or option: exit code 2."""

    exit_code = 2


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
        raise UsageError(f"{name} must be {kind}, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"{name} must be {kind}, got {value!r}")
