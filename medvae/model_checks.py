"""The checks a model file passes before medvae builds anything from it (used by :mod:`medvae.checkpoint`).

A model file comes from outside, like an image: every way it can be wrong is one line naming the file and
the problem (:class:`~medvae.errors.InputError`, exit code 1), never a traceback, a raw warning or an attempt
to allocate what the file asks for. In the order they run:

1. **The safetensors header** (:func:`read_header`) is read and checked by hand before torch or safetensors
   touch the file: an 8-byte length, a JSON object of tensors (dtype, shape, offsets inside the file) and
   string metadata. A pickle (a ``torch.save`` ``.pt`` file), a truncated file or anything else is
   "FILE: not a safetensors model file".
2. **The metadata** (:func:`parse_metadata`): ``config``, ``preprocessing`` and ``training`` must each be
   a JSON object, and the fields medvae's commands read from them must have the types they are read as
   (:data:`SCHEMA`).
3. **The config agrees with the tensors, within the memory limit** (:func:`check_config`): the model is
   first built on torch's ``meta`` device, which allocates nothing, so a config that the model classes
   refuse becomes "its config's ...", a model whose parameters would take more than the limit is refused
   before any memory is taken, and every parameter's shape must be the shape the file stores. The
   working memory of one input image at the sizes the file names (``preprocessing`` ``size`` and
   ``patch_size``, ``config`` ``in_shape``; times the first level's channels, in float32) is held to the
   same limit.
4. **Finite weights** (:func:`check_finite`): a file whose floating-point tensors hold NaN or infinity is
   refused (they would only make black or NaN images).

The limit is ``MEDVAE_MAX_MODEL_BYTES`` in the environment: bytes, with an optional ``K``, ``M``, ``G`` or
``T`` suffix (powers of 1024; ``MEDVAE_MAX_MODEL_BYTES=16G``). The default, :data:`DEFAULT_MAX_BYTES`, is
4 GiB: the shipped models take a few MB.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Callable

from medvae.errors import InputError, UsageError, count

DEFAULT_MAX_BYTES = 4 * 2**30
LIMIT_VARIABLE = "MEDVAE_MAX_MODEL_BYTES"
MAX_HEADER_BYTES = 100 * 2**20  # what the safetensors library itself allows
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
# config fields that repeat a block (one or more tensors each): no more of them than the file has tensors
REPEAT_FIELDS = ("num_res_units", "disc_layers")


def invalid(path, why: str) -> InputError:
    """The one error of a medvae model file that cannot be used: ``FILE: not a valid medvae model file (why)``."""
    return InputError(f"{path}: not a valid medvae model file ({why})")


def max_model_bytes() -> int:
    """The limit on a model's memory, from ``MEDVAE_MAX_MODEL_BYTES`` (default :data:`DEFAULT_MAX_BYTES`)."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1].upper(), 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 1):
        raise UsageError(f"{LIMIT_VARIABLE} must be a number of bytes such as 4000000000 or 4G, got {text!r}")
    return int(value)


def size_text(n: float) -> str:
    """``n`` bytes as people read them: ``512 B``, ``3.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return ""  # not reached


def _over_limit(path, what: str, need: float) -> InputError:
    limit = max_model_bytes()
    return invalid(path, f"{what} would take {size_text(need)}, above the limit of {size_text(limit)}; "
                         f"set {LIMIT_VARIABLE} to allow more")


# --- 1. the safetensors header ----------------------------------------------------------------------------

def _not_safetensors(path, why: str = "") -> InputError:
    return InputError(f"{path}: not a safetensors model file" + (f" ({why})" if why else ""))


def read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...]]]]:
    """``(metadata, tensors)`` of a safetensors file (``tensors``: name -> (dtype, shape)), checked by hand.

    Raises:
        InputError: not a safetensors file (a pickle, truncated, a corrupt header); one line naming it.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _not_safetensors(path, "it is empty" if not head else "it is too short")
        (n,) = struct.unpack("<Q", head)
        if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
            pickle = head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"  # torch.save's zip, or a bare pickle
            raise _not_safetensors(path, "it is a pickle, as torch.save writes; medvae never loads pickles"
                                   if pickle else "")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _not_safetensors(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _not_safetensors(path, "its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise _not_safetensors(path, "its metadata is not a table of strings")
    data_bytes = size - 8 - n
    tensors = {}
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            ok = (dtype in DTYPE_BYTES and all(_int(s) and s >= 0 for s in shape)
                  and _int(begin) and _int(end) and 0 <= begin <= end)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise _not_safetensors(path, "its header is corrupt")
        if end > data_bytes:
            raise _not_safetensors(path, "its tensors run past the end of the file: is it cut short?")
        if end - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise _not_safetensors(path, "its header is corrupt")
        tensors[name] = (dtype, tuple(shape))
    return metadata, tensors


# --- 2. the metadata --------------------------------------------------------------------------------------

def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _list_of(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(test(x) for x in v)


def _either(*tests: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: any(t(v) for t in tests)


_none = lambda v: v is None  # noqa: E731
_str = lambda v: isinstance(v, str)  # noqa: E731
_object = lambda v: isinstance(v, dict)  # noqa: E731
_positive = lambda v: _int(v) and v > 0  # noqa: E731
_sizes = (_either(_positive, _list_of(_positive)), "a positive integer or a list of them")
_names = (_either(_none, _list_of(_str)), "a list of names")
_text = (_str, "a string")
_range = lambda v: isinstance(v, list) and len(v) == 2 and all(_number(x) for x in v)  # noqa: E731

#: what each field that medvae reads from a model file must be: ``(test, what it must be)``; a dotted name
#: is a field inside an object field
SCHEMA: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "preprocessing": {
        "pipeline": _text, "normalize": _text, "axes": _text, "target": _text,
        "sources": (_list_of(_str), "a list of names"),
        "size": _sizes,
        "patch_size": (_either(_none, *_sizes[:1]), _sizes[1]),
        "spatial_dims": (lambda v: _int(v) and v in (2, 3), "2 or 3"),
        "multiple": (_positive, "a positive integer"),
        "spacing": (_either(_none, _list_of(lambda v: _number(v) and 0 < v < math.inf)),
                    "a list of positive sizes in mm"),
        "target_scale": (lambda v: _number(v) and math.isfinite(v), "a finite number"),
        "labels": (_object, "a JSON object"),
        "chest_check": (_either(_none, _object), "a JSON object"),
        "chest_check.ranges": (lambda v: _object(v) and all(_range(r) for r in v.values()),
                               "a JSON object of [low, high] pairs"),
        "chest_check.calibration_images": _names,
        "anomaly": (_either(_none, _object), "a JSON object"),
        "anomaly.scores": (lambda v: _object(v) and all(_list_of(_number)(x) and x for x in v.values()),
                           "a JSON object of non-empty lists of numbers"),
    },
    "training": {
        "task": _text, "command": _text, "holdout": _text,
        "data": (_either(_none, _str, _list_of(_str)), "a name or a list of names"),
        "history": _names, "val_files": _names, "train_subjects": _names,
        "train_images": (_either(_none, _int, _list_of(_str)), "a count or a list of names"),
        "test_images": (_either(_none, _int, _list_of(_str)), "a count or a list of names"),
        "train_loss": (_list_of(_number), "a list of numbers"),
        "val_loss": (_list_of(_number), "a list of numbers"),
        "test_accuracy": (_number, "a number"),
        "config": (_either(_none, _object), "a JSON object"),
        "split": (_either(_none, _object), "a JSON object"),
        "heldout_slabs": (_either(_none, _object), "a JSON object"),
    },
}
#: the preprocessing fields a kind of model cannot be used without
REQUIRED = {"synthesis": ("sources", "target", "spacing", "multiple", "spatial_dims", "target_scale")}
#: where a kind's commands read a field as a list, a count will not do
STRICTER = {("enhancer", "training", "train_images"): _names, ("enhancer", "training", "test_images"): _names,
            ("segmenter", "training", "train_images"): _names, ("segmenter", "training", "test_images"): _names}


def parse_metadata(path, kind: str, metadata: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``config``, ``preprocessing`` and ``training`` of a medvae model file, parsed and checked (:data:`SCHEMA`).

    Raises:
        InputError: a field is not JSON, not an object, or a field of it has a type medvae cannot read.
    """
    parsed = {}
    for key in ("config", "preprocessing", "training"):
        try:
            value = json.loads(metadata.get(key) or "{}")
        except (ValueError, RecursionError):
            raise invalid(path, f"its {key} metadata is not valid JSON") from None
        if not isinstance(value, dict):
            raise invalid(path, f"its {key} metadata is not a JSON object")
        for name, (test, must_be) in SCHEMA.get(key, {}).items():
            test, must_be = STRICTER.get((kind, key, name), (test, must_be))
            outer, _, inner = name.partition(".")
            holder = value.get(outer) if inner else value
            field = inner or name
            if isinstance(holder, dict) and field in holder and not test(holder[field]):
                raise invalid(path, f"its {key}'s {name} must be {must_be}")
        parsed[key] = value
    missing = [k for k in REQUIRED.get(kind, ()) if k not in parsed["preprocessing"]]
    if missing:
        raise invalid(path, f"its preprocessing lacks {', '.join(missing)}, which a {kind} model needs")
    return parsed


# --- 3. the config agrees with the tensors, within the limit ----------------------------------------------

def check_config(path, kind: str, config: dict[str, Any], preprocessing: dict[str, Any],
                 tensors: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """Build the model on the ``meta`` device (no memory) and check it against the file and the limit.

    Raises:
        InputError: the config is refused by the model class or cannot build the model, the model or one
            input image would take more than :func:`max_model_bytes`, or the config's parameter shapes are
            not those the file stores.
    """
    import torch

    from medvae.models import REGISTRY, build_model

    if kind not in REGISTRY:
        raise invalid(path, f"its kind {kind!r} is not one this medvae knows: {', '.join(sorted(REGISTRY))}")
    for name, value in config.items():  # a block repeated more often than there are tensors cannot match
        if (isinstance(value, list) or name in REPEAT_FIELDS and _int(value)) and \
                (len(value) if isinstance(value, list) else value) > len(tensors):
            raise invalid(path, f"its config's {name} does not fit its {count(len(tensors), 'tensor')}")
    try:
        with torch.device("meta"):
            model = build_model(kind, config)
    except UsageError as e:
        raise invalid(path, f"its config's {e}") from None
    except Exception as e:  # a value of the wrong type: TypeError, ValueError, ... from the model's own code
        raise invalid(path, f"its config cannot build a {kind} model: {type(e).__name__}: {e}".splitlines()[0]) from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    need = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    if need > max_model_bytes():
        raise _over_limit(path, f"the {kind} model its config describes", need)
    _check_input_size(path, config, preprocessing)
    stored = {k: shape for k, (_, shape) in tensors.items()}
    if expected != stored:
        differ = sorted(set(expected) ^ set(stored)) or [k for k in expected if expected[k] != stored[k]]
        raise invalid(path, f"its weights do not match its config: {count(len(differ), 'tensor')} differ"
                            f" in name or shape, the first {differ[0]!r}")


def _check_input_size(path, config: dict[str, Any], preprocessing: dict[str, Any]) -> None:
    """Refuse a file whose input sizes make one image's first-level features exceed the limit."""
    dims = preprocessing.get("spatial_dims", config.get("spatial_dims", 2))
    dims = dims if dims in (2, 3) else 2
    channels = config.get("channels")
    first = channels[0] if isinstance(channels, list) and channels and _positive(channels[0]) else 1
    in_shape = config.get("in_shape")
    shapes = {"config's in_shape": in_shape[1:] if isinstance(in_shape, list) else None,
              "preprocessing's size": preprocessing.get("size"),
              "preprocessing's patch_size": preprocessing.get("patch_size")}
    for what, sizes in shapes.items():
        if sizes is None:
            continue
        sizes = [sizes] * dims if _int(sizes) else sizes
        if not (isinstance(sizes, list) and all(_positive(s) for s in sizes)):
            raise invalid(path, f"its {what} must be positive integers")
        need = 4 * math.prod(sizes) * max(first, 1)
        if need > max_model_bytes():
            raise _over_limit(path, f"one image at its {what} of {' x '.join(map(str, sizes))}", need)


# --- 4. finite weights ------------------------------------------------------------------------------------

def check_finite(path, state: dict) -> None:
    """Refuse weights whose floating-point tensors hold NaN or infinity (the values are not shown)."""
    import torch

    bad = sum(1 for v in state.values() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise invalid(path, f"{bad} of its {count(len(state), 'tensor')} {'holds' if bad == 1 else 'hold'} non-finite "
                            "values, NaN or infinity")
