"""How ``--help`` reads, set once for every command: :class:`App` is the ``typer.Typer`` that every group of the
CLI is made with, and it builds its commands and groups from :class:`Command` and :class:`Group`.

* A flag (``--debug``, ``--amp/--no-amp``, ``--help``) takes no value, so it shows no ``<bool>`` type.
* A paragraph flows to the terminal's width: the single line breaks of a docstring or help string are spaces
  (a paragraph that starts with ``\\b`` keeps its lines, as in click).
* Nothing in the help column is cut with an ellipsis: a word too long for the column (a default such as
  ``noise,blur,contrast,grid,exposure``) folds onto the next line instead.

Options are grouped under ``rich_help_panel`` headings where a command has options for one model kind only.
"""

from __future__ import annotations

import contextlib
import re

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

_PARAGRAPH = re.compile(r"\n\s*\n")


def flow(text: str | None) -> str | None:
    """``text`` with the single line breaks inside each paragraph made spaces (``\\b`` paragraphs kept)."""
    if not text:
        return text
    paragraphs = _PARAGRAPH.split(text.strip())
    return "\n\n".join(p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines())
                       for p in paragraphs)


def _untyped_flags(params) -> None:
    """A flag shows no type: an empty metavar is what Typer's help prints for it (and it takes no value)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


@contextlib.contextmanager
def _folding():
    """While help is printed, the texts of the help column fold instead of ending in an ellipsis."""
    from typer import rich_utils  # rich's markdown and syntax modules: only when help is printed (~0.2 s)

    original = getattr(rich_utils, "_get_parameter_help", None)
    if original is None:  # another Typer: its help as it comes
        yield
        return

    def parameter_help(*args, **kwargs):
        columns = original(*args, **kwargs)
        for item in getattr(columns, "renderables", ()):
            if getattr(item, "overflow", "") is None:
                item.overflow = "fold"
        return columns

    rich_utils._get_parameter_help = parameter_help
    try:
        yield
    finally:
        rich_utils._get_parameter_help = original


class _ReadableHelp:
    """Flowing paragraphs, flags without a type and whole defaults, for a command or a group."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = flow(self.help)

    def get_params(self, ctx):
        params = super().get_params(ctx)
        _untyped_flags(params)
        return params

    def format_help(self, ctx, formatter) -> None:
        with _folding():
            super().format_help(ctx, formatter)


class Command(_ReadableHelp, TyperCommand):
    pass


class Group(_ReadableHelp, TyperGroup):
    pass


class App(typer.Typer):
    """``typer.Typer`` whose groups are :class:`Group` and whose commands are :class:`Command`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("rich_markup_mode", "rich")
        super().__init__(**kwargs)

    def command(self, name=None, *, cls=None, **kwargs):
        return super().command(name, cls=cls or Command, **kwargs)
