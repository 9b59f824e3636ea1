"""Every flag `hotstart` had when the snapshot was taken keeps its name, destination, default, check and arity, and
every objective's `hotstart train` flags go where they went, with the same default run config: the CLI may be
rebuilt (generated from the config dataclasses) and may gain flags, but not lose or change one. A flag changed on
purpose is a new snapshot, taken with `python scripts/cli_flags.py > tests/data/cli_flags.json`."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINNED = json.loads((ROOT / "tests" / "data" / "cli_flags.json").read_text())


def _now() -> dict:
    spec = importlib.util.spec_from_file_location("cli_flags", ROOT / "scripts" / "cli_flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.loads(json.dumps(module.snapshot(), default=repr))


def differences(pinned: dict, now: dict) -> list[str]:
    """What `now` lost or changed of `pinned` (new commands and flags are allowed)."""
    found = []
    for command, flags in pinned.items():
        if command == "train-configs":
            for objective, want in flags.items():
                have = now.get(command, {}).get(objective, {"paths": {}, "defaults": None})
                found += [f"train --objective {objective}: --{dest.replace('_', '-')} goes to {have['paths'].get(dest)}, "
                          f"not {path}" for dest, path in want["paths"].items() if have["paths"].get(dest) != path]
                if have["defaults"] != want["defaults"]:
                    found.append(f"train --objective {objective}: the default run config changed")
            continue
        for flag, want in flags.items():
            have = now.get(command, {}).get(flag)
            if have != want:
                found.append(f"{command} {flag}: " + ("gone" if have is None else
                             ", ".join(f"{k} {want[k]!r} -> {have.get(k)!r}" for k in want if have.get(k) != want[k])))
    return found


def test_every_pinned_flag_parses_alike_and_train_flags_go_where_they_went() -> None:
    assert differences(PINNED, _now()) == []


def test_a_lost_flag_a_changed_default_and_a_moved_path_are_each_caught() -> None:
    now = _now()
    lost, changed, moved = copy.deepcopy(now), copy.deepcopy(now), copy.deepcopy(now)
    del lost["finetune"]["--epochs"]
    changed["train"]["--batch-size"]["default"] = 64
    moved["train-configs"]["mae"]["paths"]["patch"] = ["model", "patch"]
    assert differences(PINNED, lost) == ["finetune --epochs: gone"]
    assert differences(PINNED, changed) == ["train --batch-size: default None -> 64"]
    assert differences(PINNED, moved) == ["train --objective mae: --patch goes to ['model', 'patch'], not ['model', 'line', 'patch']"]
