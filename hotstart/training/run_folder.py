"""One way to open a run folder, for every command that reads one (eval, finetune, generate, export, PIXAR's
stage 2): `open_run(path)` checks that it is a run folder and reads its config.yaml; the objective it names is
looked up in the loop's registry of objectives (loop.OBJECTIVES), where each objective declares its run config
(`Objective.run_config`), how its checkpoint's model is built from that config alone (`Objective.saved_model`),
and what it writes (`Objective.writes`). A new objective added there is opened, refused or loaded by every
command without an edit here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from torch import nn

from ..config import from_dict, load_yaml
from ..errors import HotStartError
from .checkpoint import load_weights

CHECKPOINTS = ("best", "last")


@dataclass
class RunFolder:
    """A run folder opened: its path, its saved config (config.yaml as written) and its objective's name."""

    path: Path
    saved: dict[str, Any]
    name: str
    """How messages name the folder: its path, or the option that gave it (`--stage1-run PATH`)."""

    @property
    def objective(self) -> str:
        """The objective it trained (next-char for a run from before objectives existed)."""
        return self.saved.get("objective", "next-char")

    @property
    def kind(self) -> Any:
        """Its Objective class, from the loop's registry."""
        from .loop import OBJECTIVES

        if self.objective not in OBJECTIVES:
            raise HotStartError(f"{self.name} is a run of objective '{self.objective}', which this version does not "
                                f"know ({', '.join(OBJECTIVES)}); read it with the version that trained it")
        return OBJECTIVES[self.objective]

    def require(self, objectives: tuple[str, ...] | list[str] | dict, then: str) -> None:
        """Refuse in one line a run whose objective is not one of `objectives`; `then` completes the sentence
        "NAME is a run of --objective X" (", which ..." or "; this command reads ...")."""
        if self.objective not in objectives:
            raise HotStartError(f"{self.name} is a run of --objective {self.objective}{then}")

    @cached_property
    def config(self) -> Any:
        """Its run config, as its objective's dataclass."""
        return from_dict(self.kind.run_config, self.saved)

    def weights(self, checkpoint: str) -> Path:
        """The safetensors file of checkpoint best or last (refused in one line otherwise)."""
        if checkpoint not in CHECKPOINTS:
            raise HotStartError(f"unknown checkpoint '{checkpoint}'; choose best or last")
        return self.path / "checkpoints" / f"{checkpoint}.safetensors"

    def load_model(self, checkpoint: str = "best") -> nn.Module:
        """Its model with the checkpoint's weights, in eval mode, built from its saved config alone (objectives
        whose model needs the corpus to be built, next-char, are opened by training.run.load_run instead)."""
        weights = self.weights(checkpoint)
        model = self.kind.saved_model(self.config)
        if model is None:
            raise HotStartError(f"{self.name} is a run of --objective {self.objective}, whose model is rebuilt with its "
                                "corpus; open it with hotstart.load_run")
        load_weights(model, weights)
        return model.eval()


def open_run(path: str | Path, name: str | None = None, fix: str = "pass the --out folder of `hotstart train`") -> RunFolder:
    """The run folder at `path`, its config read; one line naming `name` (default: the path) and `fix` where it
    is not one (a fine-tuning folder is named as such)."""
    path = Path(path)
    name = name or str(path)
    if (path / "finetune.json").is_file():
        raise HotStartError(f"{name} is a fine-tuning folder; pass the pretraining run it was fine-tuned from")
    if not (path / "config.yaml").is_file():
        raise HotStartError(f"{name} is not a run folder (no config.yaml); {fix}")
    return RunFolder(path, load_yaml(path / "config.yaml"), name)
