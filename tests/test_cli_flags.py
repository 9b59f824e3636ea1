"""Every flag `hotstart` had when the snapshot was taken keeps its name, destination, default, check and arity, and
every objective's `hotstart train` flags go where they went, with the same default run config: the CLI may be
rebuilt (generated from the config dataclasses) and may gain flags, but not lose or change one. A flag changed on
purpose is a new snapshot, taken with `python scripts/cli_flags.py > tests/data/cli_flags.json`."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hotstart.config import flag
from hotstart.training.config import TrainConfig

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
        for option, want in flags.items():
            have = now.get(command, {}).get(option)
            if have != want:
                found.append(f"{command} {option}: " + ("gone" if have is None else
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


def test_the_generated_flag_table_is_what_the_dataclasses_give() -> None:
    from hotstart.flags import build_table, read_table

    assert read_table() == json.loads(json.dumps(build_table())), \
        "hotstart/flags.json is out of date: run `python -m hotstart.flags` after changing a config field"


@dataclass
class ToyModel:
    """A toy model."""

    width_factor: float = 2.0
    """How much wider the toy is."""
    steps: list[int] = field(default_factory=list, metadata=flag(check="positive_int"))
    """When the toy steps."""


@dataclass
class ToyRun:
    """A toy run."""

    data: str = field(metadata=flag(by_hand=True))
    model: ToyModel = field(default_factory=ToyModel)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class ClashingModel:
    """A model whose `patch` reads text where the line models' reads a number."""

    patch: str = "big"


@dataclass
class ClashingRun:
    """A run of it."""

    data: str = field(metadata=flag(by_hand=True))
    model: ClashingModel = field(default_factory=ClashingModel)


def test_a_new_config_field_is_a_new_flag_with_its_help_and_a_clash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from hotstart.flags import add_flags, build_table
    from hotstart.options import CHECKS
    from hotstart.training.loop import OBJECTIVES

    monkeypatch.setitem(OBJECTIVES, "toy", type("Toy", (), {"run_config": ToyRun}))
    table = build_table()["train"]
    assert table["paths"]["toy"]["width_factor"] == ["model", "width_factor"]
    assert "width_factor" not in table["paths"]["mae"]  # another objective: refused there by the CLI
    parser = argparse.ArgumentParser()
    add_flags(parser, table, CHECKS)
    args = parser.parse_args(["--width-factor", "3", "--steps", "4", "8"])
    assert args.width_factor == 3.0 and args.steps == [4, 8]
    assert "How much wider the toy is." in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--steps", "0"])  # the check the field's metadata names
    monkeypatch.setitem(OBJECTIVES, "clashing", type("Clashing", (), {"run_config": ClashingRun}))
    with pytest.raises(ValueError, match="--patch: clashing's model.patch reads it otherwise"):
        build_table()


@dataclass
class ToyCommandConfig:
    """A toy command's settings."""

    source: str = field(metadata=flag(by_hand=True))
    rounds: int = field(default=0, metadata=flag(check="positive_int"))
    """Rounds; 0: as many as the source has."""
    seeds: list[int] = field(default_factory=lambda: [0, 1], metadata=flag(comma="0,1"))
    """One try per seed."""
    label: str = "plain"
    """What to call it."""
    loud: bool = False
    """Say more."""


def test_a_command_config_field_is_a_flag_defaulting_to_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # prepare and finetune: no config file or preset beneath the flags, so each defaults to its field's value, shown
    # in the help; a "0: the default" value that the flag's check refuses stays unset; a comma list becomes numbers
    from hotstart import flags
    from hotstart.errors import HotStartError
    from hotstart.options import CHECKS

    monkeypatch.setattr(flags, "command_configs", lambda: {"toy": ToyCommandConfig})
    table = flags.build_table()["toy"]
    monkeypatch.setattr(flags, "read_table", lambda: {"toy": table})
    parser = argparse.ArgumentParser()
    parser.add_argument("--source")
    flags.add_flags(parser, table, CHECKS)
    defaults = parser.parse_args([])
    assert (defaults.rounds, defaults.seeds, defaults.label, defaults.loud) == (None, "0,1", "plain", False)
    assert "What to call it (default plain)." in parser.format_help()
    assert flags.command_config("toy", defaults, source="here") == ToyCommandConfig("here", 0, [0, 1], "plain", False)
    given = parser.parse_args(["--rounds", "3", "--seeds", "4,5,6", "--label", "x", "--loud"])
    assert flags.command_config("toy", given, source="s") == ToyCommandConfig("s", 3, [4, 5, 6], "x", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--rounds", "0"])
    with pytest.raises(HotStartError, match=r"^--seeds takes comma-separated integers like 0,1, got '4,x'$"):
        flags.command_config("toy", parser.parse_args(["--seeds", "4,x"]), source="s")


@pytest.mark.parametrize(("argv", "words"), [
    (["finetune", "RUN", "--dropout", "1.5"], "argument --dropout: must be a number >= 0 and <= 0.99, got 1.5"),
    (["finetune", "RUN", "--train-examples", "64,,x"], "--train-examples takes comma-separated integers like 64,256,1024"),
    (["prepare", "--corpus", "inews", "--seq-len", "1"], "argument --seq-len: must be an integer >= 2, got 1"),
])
def test_a_generated_command_flag_refuses_a_bad_value_in_one_line(argv: list[str], words: str, tmp_path: Path,
                                                                     capsys) -> None:
    from hotstart.cli import main

    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--weight-decay", "-1", "--weight-decay must be 0 or more, got -1.0"),
    ("--grad-clip", "-1", "--grad-clip must be 0 or more, got -1.0"),
    ("--max-bad-steps", "-3", "--max-bad-steps must be 0 or more, got -3"),
    ("--min-lr-ratio", "5", "--min-lr-ratio must be between 0 and 1"),
    ("--onecycle-pct-start", "2", "--onecycle-pct-start must be between 0 and 1"),
    ("--onecycle-final-div", "0", "--onecycle-final-div must be at least 1"),
    ("--n-positions", "0", "n_positions 0 < corpus seq_len"),
    ("--holdout-bands", "0", "--holdout-bands must be at least 1"),
])
def test_a_flag_a_new_field_brought_refuses_a_bad_value_in_one_line(flag: str, value: str, words: str, tiny_corpus,
                                                                     tmp_path: Path, capsys) -> None:
    # the flags that appeared when the CLI was generated: each checked before any work, as the old ones are
    from hotstart.cli import main

    out = tmp_path / "r"
    assert main(["train", "--data", str(tiny_corpus.path), "--size", "tiny", "--max-samples", "16", "--out", str(out),
                 "--quiet", flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], err
    assert not (out / "checkpoints").exists()  # refused before training


@pytest.mark.parametrize(("objective", "flag", "value", "words"), [
    ("mae", "--line-margin", "3", "margin=3.0 is not allowed"),
    ("mae", "--binary-threshold", "7", "binary_threshold=7.0 is not allowed"),
    ("pixar", "--disc-dropout", "2", "the discriminator's dropout must be in [0, 1)"),
])
def test_a_line_flag_a_new_field_brought_refuses_a_bad_value_in_one_line(objective: str, flag: str, value: str, words: str,
                                                                          tiny_corpus, tmp_path: Path, capsys) -> None:
    from hotstart.cli import main

    assert main(["train", "--objective", objective, "--data", str(tiny_corpus.path), "--size", "tiny", "--max-samples",
                 "16", "--out", str(tmp_path / "r"), "--quiet", flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], err
