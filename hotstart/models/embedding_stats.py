"""How distinct are the vectors a model feeds its decoder, one per character?

A decoder can only tell characters apart as far as their input vectors differ. An encoder that
maps many glyphs to nearly the same vector (a collapse) leaves the decoder to learn from
position alone, and such a model sits on the most-frequent-character plateau however long it
trains. These statistics make that visible from a checkpoint, for either input path: the index
baseline's embedding table or a vision model's encoded glyph bank.
"""


from __future__ import annotations

import torch

from ..data.prepared import SPECIALS
from ..errors import HotStartError
from .hotstart_lm import HotStartLM, VisionInput

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
