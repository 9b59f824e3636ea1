"""The config flags of `hotstart train`, generated from the run configs' dataclasses.

Every field of every objective's run config (training/loop.py OBJECTIVES) is a flag: named after the field
(dashes for underscores) unless its `flag` metadata names it (config.py `flag`), with the field's docstring as
its help, its group the dataclass that holds it, and its check from the field's type (int, float, text; a list
is repeated or takes several values; a bool switches) unless the metadata names one of options.CHECKS. Fields of
the same name in several objectives' configs are one flag, which each objective sends to its own field (`--patch`:
`model.line.patch` for mae, `model.pixel.line.patch` for dual); a flag an objective's config lacks is refused for
that objective in one line. A new field is therefore a new flag with its help, and cli.py does not change.

Building the table imports the configs, and with them torch, which `hotstart --help` must not wait for; so the
table is written once to train_flags.json beside this module (`python -m hotstart.flags`), and the CLI reads it.
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

TABLE = Path(__file__).with_name("train_flags.json")
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
    elif origin in (list, tuple):
        element = typing.get_args(kind)[0]
        spec["check"] = spec["check"] or {int: "int", float: "float"}.get(element)
        spec["action"], spec["nargs"] = ("append", None) if meta.get("repeat") else ("store", "+")
    else:
        spec["check"] = spec["check"] or {int: "int", float: "float"}.get(kind)
    return spec


def build_table() -> dict[str, Any]:
    """{"flags": [{flag, dest, action, check, nargs, group, help}, ...], "paths": {objective: {dest: path}}}."""
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
            group = (owner.__doc__ or owner.__name__).strip().splitlines()[0].rstrip(".")
            seen = flags.setdefault(spec["dest"], {**spec, "group": group, "help": {}, "by_hand": f.metadata.get("flag", {}).get("by_hand", False)})
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
    """Add every generated flag of `table` not declared by hand, in argument groups named by their dataclass."""
    groups: dict[str, Any] = {}
    for spec in table["flags"]:
        if spec["by_hand"]:
            continue
        group = groups.get(spec["group"]) or groups.setdefault(spec["group"], parser.add_argument_group(spec["group"]))
        text = ("Off: " if spec["action"] == "negate" else "") + spec["help"].replace("%", "%%")
        options: dict[str, Any] = {"dest": spec["dest"], "help": text}
        if spec["action"] == "store_true":
            options.update(action="store_true", default=None)
        elif spec["action"] == "both":
            options.update(action=argparse.BooleanOptionalAction, default=None)
        elif spec["action"] == "negate":
            options.update(action="store_true")
        else:
            options.update(action=spec["action"], type=checks[spec["check"]] if spec["check"] else None)
            if spec["nargs"]:
                options["nargs"] = spec["nargs"]
        group.add_argument(f"--{spec['flag']}", **options)


def main() -> None:
    """Write train_flags.json from the dataclasses (run after adding or changing a config field)."""
    TABLE.write_text(json.dumps(build_table(), indent=1) + "\n", encoding="utf-8")  # in order: objectives as listed
    print(f"wrote {TABLE}", file=sys.stderr)


if __name__ == "__main__":
    main()
