"""Strict conversion between config dataclasses and plain dicts / YAML.

Every config in HotStart is a small dataclass that lives next to what it configures. This
module turns them into plain dicts (for config.yaml in a run folder) and back, refusing
unknown keys and values of the wrong type, so a typo in a config file is an error rather
than a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import HotStartError

T = TypeVar("T")


def flag(name: str | None = None, check: str | None = None, *, dest: str | None = None, cli: bool = True,
         negate: bool = False, both: bool = False, repeat: bool = False, comma: str | None = None,
         by_hand: bool = False) -> dict[str, Any]:
    """A config field's command-line flag (`hotstart train`, `prepare`, `finetune`), as field metadata
    (`field(default=..., metadata=flag(...))`; flags.py generates the flags): `name` (default: the field's,
    dashed), `check` (a name in options.CHECKS; default: from the field's type), `dest` (the parsed option's name;
    default: the flag's, or the field's for a `repeat` list), `cli=False` for a field the corpus or the command
    decides, `negate` for a bool that defaults on and is switched off by --no-NAME, `both` for --NAME/--no-NAME,
    `repeat` for a list given one value per flag, `comma` for a list of integers written "0,1,2" (its value: that
    example), `by_hand` for a flag cli.py declares itself (its help covers more than the field)."""
    return {"flag": {"name": name, "check": check, "dest": dest, "cli": cli, "negate": negate, "both": both, "repeat": repeat,
                     "comma": comma, "by_hand": by_hand}}


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass (possibly nested) as a plain dict of builtins."""
    return dataclasses.asdict(cfg)


def _check_value(name: str, value: Any, hint: Any) -> Any:
    """Return `value` converted to `hint` where lossless (int -> float, list -> tuple), else raise."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _check_value(name, value, arg)
            except HotStartError:
                continue
        raise HotStartError(f"config field '{name}': {value!r} is not a {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise HotStartError(f"config field '{name}': expected null, got {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise HotStartError(f"config field '{name}': expected a mapping, got {value!r}")
        return from_dict(hint, value, prefix=f"{name}.")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise HotStartError(f"config field '{name}': expected a list, got {value!r}")
        item_hint = args[0] if args else Any
        items = [_check_value(f"{name}[{i}]", v, item_hint) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise HotStartError(f"config field '{name}': expected a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise HotStartError(f"config field '{name}': expected {hint.__name__}, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise HotStartError(
            f"config field '{name}': expected {hint.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, refusing unknown keys and wrongly typed values."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise HotStartError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"known keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _check_value(prefix + k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def replace(cfg: T, **overrides: Any) -> T:
    """A copy of `cfg` with the non-None `overrides` applied and type-checked."""
    data = to_dict(cfg)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(type(cfg), data)


def save_yaml(data: dict[str, Any], path: Path) -> None:
    """Write `data` as YAML, keys in definition order."""
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error if the file is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise HotStartError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HotStartError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise HotStartError(f"config file {path} does not hold a mapping")
    return data
