"""Embedding statistics of a run folder (models/embedding_stats.py computes them): `hotstart embeddings`
and the record in embeddings.json that the report reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.embedding_stats import embedding_spread, input_table
from ..training.checkpoint import read_json, write_json
from ..training.run import load_run

EMBEDDINGS_FILE = "embeddings.json"


def run_embedding_spread(run_dir: str | Path, checkpoint: str = "best", top: int = 1000,
                         progress: bool = True, save: bool = False) -> dict[str, Any]:
    """`embedding_spread` of a run's input vectors at a checkpoint: best, last, or init (the
    weights the run started from, rebuilt from its config and seed).

    With `save`, the result is also kept in the run folder's embeddings.json, one entry per
    checkpoint with the command that reproduces it, where `hotstart report` finds it.
    """
    run = load_run(run_dir, checkpoint=checkpoint, progress=progress)
    stats = embedding_spread(input_table(run.model), run.corpus.vocab.counts, top=top)
    if save:
        record_path = Path(run_dir) / EMBEDDINGS_FILE
        record = read_embeddings(run_dir) or {}
        command = f"hotstart embeddings {run_dir} --checkpoint {checkpoint}" + (f" --top {top}" if top != 1000 else "")
        record[checkpoint] = {"command": command, **stats}
        write_json(record_path, record)
    return {"run": str(run_dir), "checkpoint": checkpoint, "input": run.config.model.input.kind, **stats}


def read_embeddings(run_dir: str | Path) -> dict[str, dict[str, Any]] | None:
    """A run folder's embeddings.json ({checkpoint: statistics}), or None where there is none."""
    path = Path(run_dir) / EMBEDDINGS_FILE
    return read_json(path, "embedding statistics") if path.is_file() else None
