"""Every flag of every `hotstart` command with what it parses to (dest, default, type, nargs, choices), as
JSON: the snapshot tests/test_cli_flags.py holds the CLI to while it is rebuilt (issue: a CLI generated from
the config dataclasses must keep today's flag names and defaults).

    python scripts/cli_flags.py > tests/data/cli_flags.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def describe(action: argparse.Action) -> dict[str, Any]:
    """What a flag parses to: its destination, default, checker (by its allowed values' text), arity."""
    check = action.type
    kind = getattr(check, "allowed", None) or getattr(check, "__name__", None) if check is not None else None
    return {"dest": action.dest, "default": action.default if not callable(action.default) else repr(action.default),
            "type": kind, "nargs": action.nargs, "choices": list(action.choices) if action.choices else None,
            "required": action.required, "action": type(action).__name__, "const": action.const}


def train_configs() -> dict[str, Any]:
    """For each objective of `hotstart train`: where each of its flags goes in its run config, and the run
    config that the defaults alone give (the data folder aside)."""
    from hotstart.cli import _objective_options, _run_config, build_parser
    from hotstart.config import to_dict

    parser, out = build_parser(), {}
    for objective, paths in _objective_options().items():
        args = parser.parse_args(["train", "--objective", objective, "--data", "DATA", "--out", "OUT"])
        out[objective] = {"paths": {dest: list(path) for dest, path in sorted(paths.items())},
                          "defaults": to_dict(_run_config(args))}
    return out


def snapshot() -> dict[str, dict[str, Any]]:
    """{command: {flag or positional dest: description}} for every subcommand of `hotstart`, and under
    "train-configs" train_configs()."""
    from hotstart.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, sub in commands.choices.items():
        flags = {}
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            key = max(action.option_strings, key=len) if action.option_strings else action.dest
            flags[key] = describe(action)
        out[name] = flags
    out["train-configs"] = train_configs()
    return out


if __name__ == "__main__":
    json.dump(snapshot(), sys.stdout, indent=1, sort_keys=True, default=repr)
    print()
