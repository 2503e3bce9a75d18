"""One mechanism for SCUF's dataclass configs: declare a field with its constraints, validate, read from JSON.

Every config (`SCUFConfig`, `LossWeights`, `DataConfig`, `OptimConfig`, `OfficialQuirks`, `TrainConfig`) is a
plain dataclass whose fields carry their type annotation and, where needed, constraints declared with `option`::

    @dataclass
    class LossWeights:
        SECTION: ClassVar[str] = "loss"
        gan: float = option(1.0, ge=0)
        gan_loss: str = option("multilevel_sigmoid", choices=("multilevel_sigmoid", "hinge"))

        def __post_init__(self) -> None:
            check_fields(self)

`check_fields` checks (and normalises: int → float, list → tuple, tuple → list) every field against its annotation
(`bool`, `int`, `float`, `str`, `X | None`, `tuple[float, ...]`, `list[str]`, nested config) and its constraints,
raising one ValueError that names the field as a user writes it (`loss.gan`, `model.adapter`) and the allowed
values. `from_dict` builds a config from a JSON object (nested sections too), rejecting unknown keys with a
"did you mean"; `to_dict` is the inverse (JSON-ready: tuples become lists).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from functools import lru_cache
from typing import Any, Sequence, TypeVar

__all__ = ["option", "check_fields", "from_dict", "to_dict", "field_names"]

T = TypeVar("T")


def option(
    default: Any = dataclasses.MISSING,
    *,
    factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: Sequence[Any] | None = None,
    nonempty: bool = False,
) -> Any:
    """A dataclass field with constraints: ``ge``/``gt``/``le`` bounds for numbers, ``choices`` for any value,
    ``nonempty`` for strings and lists. ``factory`` gives a mutable default."""
    meta = {"ge": ge, "gt": gt, "le": le, "choices": tuple(choices) if choices is not None else None,
            "nonempty": nonempty}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _section(obj_or_cls: Any) -> str:
    return getattr(obj_or_cls, "SECTION", "") or ""


def _name(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); anything else → (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(label: str, hint: Any, value: Any) -> Any:
    """The value converted to the annotated type, or ValueError naming the field."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{label} must be true or false; got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{label} must be an integer; got {value!r}")
        return value
    if hint is float:
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(f"{label} must be a finite number; got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{label} must be a string; got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{label} must be a list; got {value!r}")
        if len(args) != 2 or args[1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{label} must have {len(args)} entries; got {value!r}")
            return tuple(_coerce(label, a, v) for a, v in zip(args, value))
        return tuple(_coerce(label, args[0], v) for v in value)
    if origin is list:
        (arg,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{label} must be a list; got {value!r}")
        return [_coerce(label, arg, v) for v in value]
    if dataclasses.is_dataclass(hint):
        if isinstance(value, dict):
            return from_dict(hint, value)
        if not isinstance(value, hint):
            raise ValueError(f"{label} must be a {hint.__name__} (or a JSON object); got {type(value).__name__}")
        return value
    return value  # an annotation this mechanism does not know: left to the class


def _check_constraints(label: str, meta: typing.Mapping[str, Any], value: Any) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ValueError(f"{label} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    if _is_number(value):
        for key, ok, words in (("ge", lambda v, b: v >= b, "≥"), ("gt", lambda v, b: v > b, ">"),
                               ("le", lambda v, b: v <= b, "≤")):
            bound = meta.get(key)
            if bound is not None and not ok(value, bound):
                raise ValueError(f"{label} must be {words} {bound:g}; got {value!r}")
    if meta.get("nonempty") and (not value or (isinstance(value, str) and not value.strip())):
        raise ValueError(f"{label} must not be empty; got {value!r}")


def check_fields(obj: Any) -> None:
    """Validate and normalise every field of the dataclass instance ``obj`` in place (see the module docstring)."""
    section = _section(obj)
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        label = _name(section, f.name)
        hint, optional = _split_optional(hints[f.name])
        value = getattr(obj, f.name)
        if value is None:
            if not optional:
                raise ValueError(f"{label} must not be null")
            continue
        value = _coerce(label, hint, value)
        _check_constraints(label, f.metadata, value)
        object.__setattr__(obj, f.name, value)


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def from_dict(cls: type[T], data: Any, *, hint: str = "") -> T:
    """Build the config ``cls`` from a JSON object; nested sections may be objects. Unknown keys are an error
    naming the closest known ones; ``hint`` is appended to that error (e.g. "was it written by a newer gefu?")."""
    section = _section(cls)
    what = f"the {section} section" if section else f"a {cls.__name__}"
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object; got {type(data).__name__}")
    known = field_names(cls)
    unknown = [k for k in data if k not in known]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), known, n=2)
        did = f" Did you mean {' or '.join(_name(section, c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown config field {_name(section, str(key))!r}.{did} Known in {what}: {', '.join(known)}."
            + (f" {hint}" if hint else "")
        )
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        sub, _ = _split_optional(hints[key])
        if dataclasses.is_dataclass(sub) and isinstance(value, dict):
            value = from_dict(sub, value, hint=hint)
        kwargs[key] = value
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """The config as a JSON-ready dict (nested sections as dicts, tuples as lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(obj)
