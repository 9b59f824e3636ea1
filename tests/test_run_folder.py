"""One way to open a run: a seventh objective declared in the loop's registry alone is opened by every command
that reads runs, and refused in one line by those that cannot read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hotstart.cli import main
from hotstart.config import save_yaml
from hotstart.training import loop
from hotstart.training.objective import Objective
from hotstart.training.run_folder import open_run


@dataclass
class ToyRunConfig:
    data: str = ""
    objective: str = "toy"
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


class Toy(Objective):
    """A seventh objective, declared here alone: its config class, nothing it writes."""

    name = "toy"
    progress_metric = "val_loss"
    run_config = ToyRunConfig

    def check(self): ...
    def build_model(self, progress): ...
    def write_run_files(self, run_dir): ...
    def batch(self, index, step): ...
    def loss(self, model, batch): ...
    def evaluate(self, model, precision): ...
    def summary_fields(self): ...


@pytest.fixture
def toy_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(loop.OBJECTIVES, "toy", Toy)
    run = tmp_path / "toy"
    run.mkdir()
    save_yaml({"objective": "toy", "data": "nowhere"}, run / "config.yaml")
    return run


def test_a_new_objective_is_opened_with_its_own_config_class(toy_run: Path) -> None:
    folder = open_run(toy_run)
    assert folder.kind is Toy and isinstance(folder.config, ToyRunConfig) and folder.config.data == "nowhere"


@pytest.mark.parametrize("argv,fragment", [
    (["eval", "{run}"], "is a run of --objective toy; this command reads next-char runs"),
    (["finetune", "{run}", "--out", "{tmp}/ft"], "is a run of --objective toy; fine-tuning reads next-char, mae and mlm runs"),
    (["generate", "{run}", "--prompt", "a", "--out", "{tmp}/g.png"], "is a run of --objective toy; this reads pixel LM runs"),
    (["export", "{run}", "--out", "{tmp}/x"], "is a run of --objective toy, which has no export"),
])
def test_every_command_that_reads_runs_refuses_one_it_cannot_read_in_one_line(toy_run: Path, argv: list[str],
                                                                              fragment: str, capsys) -> None:
    assert main([a.format(run=toy_run, tmp=toy_run.parent) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_an_objective_this_version_does_not_know_is_named(tmp_path: Path, capsys) -> None:
    save_yaml({"objective": "telepathy"}, tmp_path / "config.yaml")
    assert main(["generate", str(tmp_path), "--prompt", "a"]) == 2
    assert "objective 'telepathy', which this version does not know" in capsys.readouterr().err
