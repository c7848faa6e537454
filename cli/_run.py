"""Turning library errors into one-line messages and exit codes (0 ok, 1 failed input, 2 bad usage)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import typer

T = TypeVar("T")


class _State:
    debug = False


state = _State()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (``raise fail(...) from None``)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


_UNSET = object()


def run_task(fn: Callable[..., T], *args, threads=_UNSET, **kwargs) -> T:
    """Call a library function; its errors become one line on stderr and an exit code (a traceback with --debug).

    ``threads`` (a command's ``--threads``; None: the default) sizes torch's CPU threads first
    (:func:`medvae.train.device.set_threads`): every command that runs a model passes it.

    :class:`medvae.errors.OutputExists` (the output is there and ``--overwrite`` was not given) is one line
    ``note: ...`` on stderr and exit code 0, with or without --debug."""
    from medvae.errors import MedvaeError, OutputExists, UsageError, first_line

    try:
        if threads is not _UNSET:
            import_with_note("torch", "PyTorch")
            from medvae.train.device import set_threads

            set_threads(threads)
        return fn(*args, **kwargs)
    except OutputExists as e:  # not a failure: nothing was redone, and the note says how to redo it
        typer.echo(f"note: {first_line(e)}", err=True)
        raise typer.Exit(0) from None
    except MedvaeError as e:
        if state.debug:
            raise
        message = first_line(e)
        if isinstance(e, UsageError) and e.param:
            message = _as_typed(message, e.param)
        raise fail(message, e.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except Exception as e:  # an unexpected failure: still one line unless --debug
        if state.debug:
            raise
        raise fail(f"{type(e).__name__}: {first_line(e)} (run 'medvae --debug ...' for the traceback)", 1) from None


def import_with_note(module: str, label: str, after: float = 1.0, stream=None) -> None:
    """Import ``module`` now; on a terminal, print ``loading LABEL ...`` if that takes over ``after`` seconds
    (torch takes 1-4 s on a quiet 2-core machine and several times that on a busy one, and nothing else would
    be printed meanwhile). Off a terminal (pipes, logs, tests) nothing is printed."""
    import importlib
    import threading

    stream = sys.stderr if stream is None else stream
    if module in sys.modules or not getattr(stream, "isatty", lambda: False)():
        importlib.import_module(module)
        return
    done = threading.Event()

    def note() -> None:
        if not done.wait(after):
            print(f"loading {label} ...", file=stream, flush=True)

    timer = threading.Thread(target=note, daemon=True)
    timer.start()
    try:
        importlib.import_module(module)
    finally:
        done.set()
        timer.join()


def _as_typed(message: str, param: str) -> str:
    """``message`` with its leading library parameter name replaced by what the user typed on the running
    command: the option (``--batch-size``) or the argument (``OUTPUT``). A parameter the command does not
    have (a value read from a model file, say) is left as the library named it."""
    context = _current_context()
    command = context.command if context is not None else None
    if any(p.name == param for p in getattr(command, "params", [])) and message.startswith(param):
        return _shown(context, param) + message[len(param):]
    return message


def _current_context():
    """The running command's click context. Typer 0.2x runs on its own vendored click, and a separately
    installed ``click`` then holds no context, so ask both (typer's first)."""
    getters = []
    try:
        from typer._click.globals import get_current_context as vendored
        getters.append(vendored)
    except ImportError:  # typer before 0.2x runs on the click package
        pass
    try:
        from click import get_current_context as package
        getters.append(package)
    except ImportError:
        pass
    for get in getters:
        context = get(silent=True)
        if context is not None:
            return context
    return None


def one_of(param: str, value: T, alias: T | None, old: str) -> T:
    """The value of the command's parameter ``param``, given under its name or under its old spelling ``old``
    (a hidden option kept for one release): ``alias`` where that was given. Both given is a usage error."""
    if alias is None:
        return value
    context = _current_context()
    if context is not None:
        source = context.get_parameter_source(param)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            raise fail(f"{old} is the old spelling of {_shown(context, param)}; give {_shown(context, param)} only")
        context.meta.setdefault(_TYPED_AS, {})[param] = old  # errors about it then name what was typed
    return alias


_TYPED_AS = "medvae.typed_as"


def _shown(context, param: str) -> str:
    """How the running command shows ``param``: the old spelling where the user gave that, else its first option
    name, or its argument's metavar."""
    typed = context.meta.get(_TYPED_AS, {}).get(param)
    if typed:
        return typed
    for p in getattr(context.command, "params", []):
        if p.name == param:
            return p.opts[0] if p.param_type_name == "option" else (p.metavar or p.name.upper())
    return param


def require(value: T | None, name: str) -> T:
    """A positional argument that became optional only so its old option spelling still works."""
    if value is None:
        raise fail(f"missing argument {name}")
    return value


def report_batch(report, verb: str, *, what: str = "inputs", also: str = "") -> None:
    """Print what a batch command did (every batch command the same way) and exit 1 if any input failed.

    Notes first, on stderr (``note: INPUT: ...``), then one ``note:`` per output that existed and was skipped
    and per entry of the input tree that was passed over (a broken link, a FIFO, ...);
    then, for one input, ``wrote OUTPUT`` (plus ``also``) or its failure as the error line; for several, the
    summary (on stderr when any failed, with each failure) and ``error: N of M ... failed``.
    """
    for src, note in report.notes:
        typer.echo(f"note: {src}: {note}", err=True)
    if state.debug:  # --debug: the traceback of every failure, batch or single
        import traceback

        for src, error in report.errors:
            typer.echo(f"traceback for {src}:", err=True)
            typer.echo("".join(traceback.format_exception(error)).rstrip(), err=True)
    for line in report.skip_notes():
        typer.echo(f"note: {line}", err=True)
    for entry, reason in report.ignored:
        typer.echo(f"note: {entry}: skipped: {reason}", err=True)
    for _, output in report.busy:
        typer.echo(f"note: {output}: in progress by another run; left to it", err=True)
    if report.shard is not None:
        i, n, mine, everything = report.shard
        typer.echo(f"note: shard {i + 1}/{n}: {mine} of the {everything} {what} (the others are the other "
                   f"shards')", err=True)
    total = len(report.done) + len(report.skipped) + len(report.failed) + len(report.busy)
    if total == 0:
        return
    if total == 1:
        if report.failed:
            src, reason = report.failed[0]
            raise fail(f"{src}: {reason}", 1)
        if report.done:
            typer.echo(f"wrote {report.done[0][1]}{also}")
        return
    typer.echo(report.summary(verb), err=bool(report.failed))
    if report.failed:
        raise fail(f"{len(report.failed)} of {total} {what} failed (listed above)", 1)


def parse_floats(name: str, text: str, n: int | None = None) -> tuple[float, ...]:
    """Parse ``"x,y"`` into floats; a bad value is a usage error naming the option."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise fail(f"{name} {text!r}: expected comma-separated numbers such as '-3,1'") from None
    if n is not None and len(values) != n:
        raise fail(f"{name} {text!r}: expected {n} comma-separated numbers, got {len(values)}")
    return values


def parse_ints(name: str, text: str) -> tuple[int, ...]:
    """Parse ``"256,128"`` into positive ints."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise fail(f"{name} {text!r}: expected comma-separated integers such as '256,128'") from None
    if not values or any(v < 1 for v in values):
        raise fail(f"{name} {text!r}: expected one or more positive integers")
    return values


def echo_err(text: str) -> None:
    print(text, file=sys.stderr)


def parse_kinds(text: str | None) -> tuple[str, ...] | None:
    """Parse ``"noise,blur"`` into names (None when not given)."""
    return tuple(k.strip() for k in text.split(",") if k.strip()) if text else None
