"""The config flags of `hotstart train`, `prepare` and `finetune`, generated from their config dataclasses.

Every field of every objective's run config (training/loop.py OBJECTIVES) is a flag: named after the field
(dashes for underscores) unless its `flag` metadata names it (config.py `flag`), with the field's docstring as
its help, its group the dataclass that holds it, and its check from the field's type (int, float, text; a list
is repeated or takes several values; a bool switches) unless the metadata names one of options.CHECKS. Fields of
the same name in several objectives' configs are one flag, which each objective sends to its own field (`--patch`:
`model.line.patch` for mae, `model.pixel.line.patch` for dual); a flag an objective's config lacks is refused for
that objective in one line. A new field is therefore a new flag with its help, and cli.py does not change.

`prepare` and `finetune` have one config each (PrepareConfig, FinetuneConfig: COMMAND_CONFIGS) and no config file
or preset beneath the command line, so their flags default to the field's value, shown in the help, except where
the field's default is one the flag's own check refuses (0 epochs: "the mode's default"), which stays unset. A list
of numbers there is written with commas (`--seeds 0,1,2`, flag metadata `comma=EXAMPLE`).

Building the table imports the configs, and with them torch, which `hotstart --help` must not wait for; so the
table is written once to flags.json beside this module (`python -m hotstart.flags`), and the CLI reads it.
tests/test_cli_flags.py fails, naming that command, when the file is not what the dataclasses give.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import json
import sys
import textwrap
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("flags.json")
"""The generated table the CLI reads."""


def field_docs(cls: type) -> dict[str, str]:
    """{field: its docstring} of a dataclass: the string literal written under each field."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body, docs = tree.body[0].body, {}
    for node, after in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr) \
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _leaves(cls: type, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dataclasses.Field, type, Any]]:
    """(path, field, the dataclass holding it, its type without None) of every non-dataclass field, depth first."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType)  # `int | None` -> int
        kind = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        if dataclasses.is_dataclass(kind):
            yield from _leaves(kind, path + (f.name,))
        else:
            yield path + (f.name,), f, cls, kind


def _spec(f: dataclasses.Field, kind: Any) -> dict[str, Any]:
    """How argparse reads one field: its flag name, destination, action, check name and arity."""
    meta = f.metadata.get("flag", {})
    name = meta.get("name") or f.name.replace("_", "-")
    dest = meta.get("dest") or (f.name if meta.get("repeat") else name.replace("-", "_"))
    spec: dict[str, Any] = {"flag": name, "dest": dest, "action": "store", "check": meta.get("check"), "nargs": None}
    origin = typing.get_origin(kind)
    if kind is bool:
        if meta.get("negate"):  # --no-X: the field set False
            spec.update(flag="no-" + name, dest="no_" + dest, action="negate")
        else:
            spec["action"] = "both" if meta.get("both") or f.default is True else "store_true"
    elif origin in (list, tuple) and meta.get("comma"):  # text "0,1,2", split by `given_values`
        spec.update(action="comma", example=meta["comma"])
    elif origin in (list, tuple):
        element = typing.get_args(kind)[0]
        spec["check"] = spec["check"] or {int: "int", float: "float"}.get(element)
        spec["action"], spec["nargs"] = ("append", None) if meta.get("repeat") else ("store", "+")
    else:
        spec["check"] = spec["check"] or {int: "int", float: "float"}.get(kind)
    return spec


def _group(cls: type) -> str:
    """An argparse group's title: the first line of the dataclass's docstring."""
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".")


def _field_default(f: dataclasses.Field) -> Any:
    """A field's default value; None for a field without one (a required config field, declared by hand)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def command_configs() -> dict[str, type]:
    """{command: its config dataclass} of the commands other than `train` whose flags are generated."""
    from .data.prepared import PrepareConfig
    from .tasks.classification import FinetuneConfig

    return {"prepare": PrepareConfig, "finetune": FinetuneConfig}


def _command_table(cls: type) -> dict[str, Any]:
    """{"flags": [...], "paths": {dest: [field]}} of one command's config; each flag defaults to its field's value
    (lists joined by commas), or None where the flag's check refuses that value (a "0: the default" field)."""
    from .options import CHECKS

    flags, paths = [], {}
    for path, f, owner, field_type in _leaves(cls):
        meta = f.metadata.get("flag", {})
        if not meta.get("cli", True):
            continue
        spec = _spec(f, field_type)
        default = _field_default(f)
        if spec["action"] == "comma":
            default = ",".join(str(v) for v in default) or None
        elif spec["action"] == "negate":
            default = False
        elif spec["check"] is not None and default is not None:
            try:
                CHECKS[spec["check"]](str(default))
            except argparse.ArgumentTypeError:
                default = None
        text = field_docs(owner).get(f.name) or f"{owner.__name__}.{f.name}"
        if default is not None and default is not False:  # `is`: a default of 0 is shown
            text = text.rstrip(".") + f" (default {default})."
        flags.append({**spec, "default": default, "group": _group(owner), "by_hand": meta.get("by_hand", False),
                      "help": text})
        paths[spec["dest"]] = list(path)
    return {"flags": flags, "paths": paths}


def build_table() -> dict[str, Any]:
    """{"train": train_table(), command: its table, ...} for `train` and each of command_configs()."""
    return {"train": train_table(), **{command: _command_table(cls) for command, cls in command_configs().items()}}


def train_table() -> dict[str, Any]:
    """{"flags": [{flag, dest, action, check, nargs, default, group, help}, ...], "paths": {objective: {dest: path}}};
    every default None (False for a --no-X switch), so that a flag left out keeps the preset's or config file's value."""
    from .training.loop import OBJECTIVES

    flags: dict[str, dict[str, Any]] = {}
    paths: dict[str, dict[str, list[str]]] = {}
    for objective, kind in OBJECTIVES.items():
        paths[objective] = {}
        for path, f, owner, field_type in _leaves(kind.run_config):
            if not f.metadata.get("flag", {}).get("cli", True):
                continue
            spec = _spec(f, field_type)
            paths[objective][spec["dest"]] = list(path)
            doc = field_docs(owner).get(f.name) or f"{owner.__name__}.{f.name}"
            seen = flags.setdefault(spec["dest"], {**spec, "default": False if spec["action"] == "negate" else None, "group": _group(owner), "help": {},
                                                   "by_hand": f.metadata.get("flag", {}).get("by_hand", False)})
            clash = [k for k in ("flag", "action", "check", "nargs") if seen[k] != spec[k]]
            if clash:
                raise ValueError(f"--{spec['flag']}: {objective}'s {'.'.join(path)} reads it otherwise ({', '.join(clash)}) "
                                 "than another objective's field of that name; give one of them another flag name")
            seen["help"].setdefault(doc, []).append(objective)
    for spec in flags.values():  # one help, or each objective's where their fields say different things
        docs = spec.pop("help")
        spec["help"] = next(iter(docs)) if len(docs) == 1 else \
            " | ".join(f"{', '.join(objectives)}: {doc}" for doc, objectives in docs.items())
    return {"flags": list(flags.values()), "paths": paths}  # in the order the objectives and their fields come


def read_table() -> dict[str, Any]:
    """The generated table, as the CLI reads it (no torch)."""
    return json.loads(TABLE.read_text(encoding="utf-8"))


def add_flags(parser: argparse.ArgumentParser, table: dict[str, Any], checks: dict[str, Any]) -> None:
    """Add every flag of one command's `table` not declared by hand, in argument groups named by their dataclass."""
    groups: dict[str, Any] = {}
    for spec in table["flags"]:
        if spec["by_hand"]:
            continue
        group = groups.get(spec["group"]) or groups.setdefault(spec["group"], parser.add_argument_group(spec["group"]))
        text = ("Off: " if spec["action"] == "negate" else "") + spec["help"].replace("%", "%%")
        options: dict[str, Any] = {"dest": spec["dest"], "help": text, "default": spec["default"]}
        if spec["action"] == "store_true" or spec["action"] == "negate":
            options["action"] = "store_true"
        elif spec["action"] == "both":
            options["action"] = argparse.BooleanOptionalAction
        elif spec["action"] == "comma":
            options["metavar"] = spec["example"]
        else:
            options.update(action=spec["action"], type=checks[spec["check"]] if spec["check"] else None)
            if spec["nargs"]:
                options["nargs"] = spec["nargs"]
        group.add_argument(f"--{spec['flag']}", **options)


def given_values(table: dict[str, Any], paths: dict[str, list[str]], args: argparse.Namespace) -> Iterator[tuple[list[str], Any]]:
    """(path in the config, value) of each flag of `paths` that was given: a --no-X switch as X False, a comma list
    as its numbers (one `error:` line for anything else); flags left unset are skipped."""
    from .options import int_list

    specs = {spec["dest"]: spec for spec in table["flags"]}
    for dest, path in paths.items():
        value = getattr(args, dest, None)
        if dest.startswith("no_") and isinstance(value, bool):  # --no-X (`negate`): the field X set False
            value = False if value else None
        elif value is not None and specs[dest]["action"] == "comma":
            value = list(int_list(value, f"--{specs[dest]['flag']}", specs[dest]["example"]))
        if value is not None:
            yield path, value


def command_config(command: str, args: argparse.Namespace, **by_hand: Any) -> Any:
    """The config of `command` (a key of command_configs()) from its parsed flags, with `by_hand` the fields
    cli.py reads itself; values are type-checked as a config file's are."""
    from .config import from_dict

    table = read_table()[command]
    paths = {dest: path for dest, path in table["paths"].items() if path[-1] not in by_hand}
    data = dict(by_hand)
    for path, value in given_values(table, paths, args):
        data[path[-1]] = value
    return from_dict(command_configs()[command], data)


def main() -> None:
    """Write flags.json from the dataclasses (run after adding or changing a config field)."""
    TABLE.write_text(json.dumps(build_table(), indent=1) + "\n", encoding="utf-8")  # in order: objectives as listed
    print(f"wrote {TABLE}", file=sys.stderr)


if __name__ == "__main__":
    main()
