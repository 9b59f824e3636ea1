"""How distinct are the vectors a model feeds its decoder, one per character?

A decoder can only tell characters apart as far as their input vectors differ. An encoder that
maps many glyphs to nearly the same vector (a collapse) leaves the decoder to learn from
position alone, and such a model sits on the most-frequent-character plateau however long it
trains. These statistics make that visible from a checkpoint, for either input path: the index
baseline's embedding table or a vision model's encoded glyph bank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .checkpoint import read_json, write_json
from .data import SPECIALS
from .errors import HotStartError
from .model import HotStartLM, VisionInput

EMBEDDINGS_FILE = "embeddings.json"
NEAR_DUPLICATE_COSINE = 0.99  # nearest other character this close: the decoder sees one vector for two
_CHUNK = 1024  # rows per block of the nearest-neighbour search


def input_table(model: HotStartLM) -> torch.Tensor:
    """(V, n_embd) input vectors of the whole vocabulary, as the decoder receives them."""
    with torch.no_grad():
        if isinstance(model.input, VisionInput):
            was_training = model.training
            model.eval()
            table = model.input.table().detach().float().clone()
            model.train(was_training)
            return table
        return model.input.wte.weight.detach().float().clone()


def embedding_spread(table: torch.Tensor, counts: list[int] | None = None, top: int = 1000,
                     skip: int = len(SPECIALS)) -> dict[str, float | int]:
    """Distinctness statistics of the rows of `table` (V, D), leaving out the first `skip` rows.

    mean_cosine: mean cosine similarity over all pairs of different characters (near 1: collapsed).
    mean_cosine_top: the same over the `top` most frequent characters (`counts`, else the first
    rows), which make up most of what training sees. near_duplicate_share: share of characters
    whose nearest other character has cosine >= 0.99. effective_rank: exp of the entropy of the
    centred table's normalised singular values (1: every vector on one line; D: all directions
    used evenly). mean_norm: mean Euclidean length of a row.
    """
    rows = table[skip:].float()
    if rows.shape[0] < 2:
        raise HotStartError(f"need at least 2 characters to compare, the table has {rows.shape[0]}")
    order = torch.arange(rows.shape[0])
    if counts is not None:
        if len(counts) != table.shape[0]:
            raise HotStartError(f"{len(counts)} counts for a table of {table.shape[0]} rows")
        order = torch.argsort(torch.tensor(counts[skip:], dtype=torch.float64), descending=True, stable=True)
    unit = torch.nn.functional.normalize(rows, dim=1)
    n = unit.shape[0]
    frequent = unit[order[: max(2, min(top, n))]]
    m = frequent.shape[0]
    nearest = torch.cat([_nearest_other(unit, start) for start in range(0, n, _CHUNK)])
    singular = torch.linalg.svdvals(rows - rows.mean(dim=0, keepdim=True)).double()
    p = singular / singular.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return {
        "characters": n,
        "mean_cosine": round(_mean_pair_cosine(unit), 4),
        "top": m,
        "mean_cosine_top": round(_mean_pair_cosine(frequent), 4),
        "near_duplicate_share": round(float((nearest >= NEAR_DUPLICATE_COSINE).float().mean()), 4),
        "effective_rank": round(float(torch.exp(entropy)), 2),
        "dimensions": rows.shape[1],
        "mean_norm": round(float(rows.norm(dim=1).mean()), 4),
    }


def _mean_pair_cosine(unit: torch.Tensor) -> float:
    """Mean dot product over pairs of different rows of `unit` (unit-length rows: their cosine).
    The sum over all ordered pairs is |sum of rows|^2 minus each row's own square, so no V x V
    matrix is needed."""
    n = unit.shape[0]
    total = unit.double().sum(dim=0).square().sum() - unit.double().square().sum()
    return float(total / (n * (n - 1)))


def _nearest_other(unit: torch.Tensor, start: int) -> torch.Tensor:
    """For rows start..start+_CHUNK of `unit`: the largest cosine with any other row. In chunks, so
    memory stays at _CHUNK x V however large the vocabulary."""
    block = unit[start : start + _CHUNK] @ unit.T  # (chunk, V)
    rows = torch.arange(block.shape[0], device=unit.device)
    block[rows, start + rows] = -2.0  # a row is not its own neighbour
    return block.max(dim=1).values


def run_embedding_spread(run_dir: str | Path, checkpoint: str = "best", top: int = 1000,
                         progress: bool = True, save: bool = False) -> dict[str, Any]:
    """`embedding_spread` of a run's input vectors at a checkpoint: best, last, or init (the
    weights the run started from, rebuilt from its config and seed).

    With `save`, the result is also kept in the run folder's embeddings.json, one entry per
    checkpoint with the command that reproduces it, where `hotstart report` finds it.
    """
    from .train import (
        load_run,  # train imports model code; import at call time as evaluate does
    )

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
