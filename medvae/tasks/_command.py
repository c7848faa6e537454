"""The command line that reproduces a training run, as stored in its model file."""

from __future__ import annotations

import dataclasses


def changed_options(config, defaults, skip: tuple[str, ...]) -> list[str]:
    """``--name value`` for each field of the dataclass ``config`` that differs from ``defaults``.

    Booleans become ``--name`` / ``--no-name`` and tuples ``--name a,b``; fields in ``skip`` are left out.
    """
    parts = []
    for f in dataclasses.fields(config):
        if f.name in skip:
            continue
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        if value != default:
            name = f.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(f"--{name}" if value else f"--no-{name}")
            else:
                parts.append(f"--{name} {','.join(map(str, value)) if isinstance(value, tuple) else value}")
    return parts
