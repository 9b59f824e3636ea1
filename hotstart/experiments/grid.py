"""What every member grid of `hotstart sweep` (fonts, robustness, attribution, ...) does before and while
its members train: check the members asked for, open the folder's record (one scale per folder), pin one
precision for all its runs, prepare the corpus once, and train each member or resume it where it stopped.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..data.corpus import INEWS
from ..data.prepared import PreparedCorpus
from ..errors import HotStartError
from ..training.checkpoint import read_json, write_json
from .sweep import Scale, corpus_version, get_scale, prepared_corpus, sweep_precision


@dataclass
class MemberGrid:
    """A grid folder opened for a command: its record, the precision its runs share, and its corpus."""

    out: Path
    record_path: Path
    record: dict[str, Any]
    precision: str
    corpus_dir: Path
    corpus: PreparedCorpus

    def save(self, **settings: Any) -> None:
        """Write the record with `settings` added (what the grid's report needs to describe it)."""
        self.record.update(settings)
        write_json(self.record_path, self.record)


def budgeted_scale(name: str, samples: int | None) -> Scale:
    """The sweep scale `name`, its `final` budget replaced by `samples` when given (a grid's smoke scale
    trains less than the sweep's, to keep its test short)."""
    scale = get_scale(name)
    return replace(scale, final_samples=samples) if samples else scale


def check_members(asked: list[str] | None, members: tuple[str, ...]) -> list[str]:
    """The members asked for (all when none), or a one-line error naming an unknown one."""
    for member in asked or []:
        if member not in members:
            raise HotStartError(f"unknown member '{member}'; choose from {', '.join(members)}")
    return list(asked or members)


NOT_PLANNED = ("members", "about")
"""Scale settings that no run depends on: a member added to a scale (or its words changed) joins the folder of the
members trained before it, where any other setting that differs starts another plan."""


def open_member_grid(out: str | Path, grid: str, record_name: str, scale_name: str, seq_len: int, data: str | None,
                     precision: str, device: str, progress: bool, command: str, corpus: str = INEWS,
                     scale_settings: dict[str, Any] | None = None) -> MemberGrid:
    """Open (or start) the grid folder `out`: its record `record_name` must hold the same scale, planned as
    `scale_settings` (a folder trained under an earlier plan of the same scale name keeps its record and is not
    mixed with new runs), and the same built-in `corpus`; the precision is the one its runs trained in; the
    corpus is --data or the built-in one prepared there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / record_name
    existing = read_json(record_path, "grid record") if record_path.exists() else None
    record = existing or {"scale": scale_name, "commands": []}
    if record["scale"] != scale_name:
        raise HotStartError(f"{out} holds the {grid} grid at scale '{record['scale']}', not '{scale_name}'; use another --out")
    saved = (existing or {}).get("scale_settings")
    if scale_settings is not None:
        scale_settings = json.loads(json.dumps(scale_settings))  # as the record holds it: tuples as lists
    changed = sorted(k for k in set(saved or {}) | set(scale_settings or {})
                     if k not in NOT_PLANNED and (saved or {}).get(k) != (scale_settings or {}).get(k))
    if saved is not None and scale_settings is not None and changed:
        raise HotStartError(f"{out} holds the {grid} grid's '{scale_name}' scale as planned before ({', '.join(changed)} "
                            "differ from today's plan); its runs stay the record of that plan: use another --out")
    if not data and existing is not None and existing.get("corpus", INEWS) != corpus:  # a new folder takes any
        raise HotStartError(f"{out} holds a {grid} grid of the built-in corpus {existing.get('corpus', INEWS)}, "
                            f"not {corpus}; use another --out")
    pinned = sweep_precision(out, precision, device, record_name)
    version = None if data else corpus_version(existing, corpus)
    corpus_dir = prepared_corpus(data, out, seq_len, scale_name, progress, version, corpus)
    record["precision"] = pinned
    if version is not None:
        record["corpus_version"], record["corpus"] = version, corpus
    if command and command not in record["commands"]:
        record["commands"].append(command)
    return MemberGrid(out, record_path, record, pinned, corpus_dir, PreparedCorpus.load(corpus_dir))


def train_member(cfg: Any, run_dir: Path, progress: bool) -> None:
    """Train a member's run unless it finished before, resuming from its last saved state if it has one."""
    from ..training.loop import train

    if (run_dir / "summary.json").is_file():
        return
    resume = (run_dir / "checkpoints" / "state.safetensors").is_file()
    print(f"training {run_dir.name}", file=sys.stderr, flush=True)
    train(cfg, run_dir, progress=progress, overwrite=not resume, resume=resume)
