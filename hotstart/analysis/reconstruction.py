"""Can a reader read what an MAE reconstructs? Its validation lines, with the masked patches filled by the
model, read back by the OCR engine beside the same lines real and with the masks filled by the trivial predictor.

Our reading of "masked spans reconstructed readably" (issue targets; PIXEL-M4's paper shows reconstructions but
gives no read-back measure): the first `count` validation lines of the run, under the fixed masks its evaluations
use, are drawn three ways up to their end patch and read by the OCR engine (analysis/readback.py `ocr_line`):

    real            the line as rendered: the reader's ceiling
    reconstruction  the masked patches as the model shows them (models/mae.py `reconstruct`: with norm_pix_loss,
                    un-normalised by each true patch's own mean and variance, MAE's convention for pictures)
    floor           the masked patches as a model that predicts zeros shows them: each patch's own mean grey
                    with norm_pix_loss (the same un-normalisation, no shape), blank without it

Each is scored by its character error rate against the line's text (experiments/compression.py `cer`: NFKC,
spaces out, pooled over lines). Since only the masked share of a line is redrawn, the floor already reads most
of the line; what the reconstruction gives back is `recovered`: (CER floor - CER reconstruction) / (CER floor -
CER real), 0 for the floor and 1 for the real line. The literal target (the reconstruction read at >= 50% of the
real line) is reported too, and the floor is shown beside it, since it meets that alone wherever masks are few.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..errors import HotStartError
from ..render.line import line_image

READ_BACK_LINES = 64
"""Validation lines read back (each three times by the OCR engine: a few seconds each on a CPU core)."""


def ocr_engine() -> Any:
    """The OCR engine (PP-OCRv4 through rapidocr-onnxruntime), or one line saying how to install it."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise HotStartError("reading reconstructions back needs an OCR engine; pip install 'hotstart[ocr]'") from None
    return RapidOCR()


@torch.no_grad()
def reconstruction_readback(run_dir: str | Path, count: int = READ_BACK_LINES, checkpoint: str = "best",
                            engine: Any = None) -> dict[str, Any]:
    """The three readings of the module docstring for the first `count` validation lines of mae run `run_dir`."""
    from ..data.prepared import PreparedCorpus
    from ..experiments.compression import cer
    from ..training.mae_run import MaskedPatches
    from ..training.run_folder import open_run
    from .readback import ocr_line

    folder = open_run(run_dir)
    folder.require(("mae",), "; reconstructions are read back from mae runs")
    config = folder.config
    model = folder.load_model(checkpoint)
    objective = MaskedPatches(config, PreparedCorpus.load(config.data))
    objective.check()  # its validation lines and the fixed masks its evaluations use
    index, masks = objective._val[:count], torch.from_numpy(objective._val_masks[:count])
    drawn = objective.lines.render(index)
    patches, texts = torch.from_numpy(drawn.patches), objective.lines.texts(index)
    shown = model.reconstruct(patches, masks).float()
    spread = (1,) * (patches.dim() - 2)  # (B, N) -> (B, N, 1, 1[, 1])
    zeros = torch.zeros_like(patches) if not config.model.norm_pix_loss else \
        patches.flatten(2).mean(-1).reshape(*masks.shape, *spread).expand_as(patches)  # each patch's own mean grey
    floor = torch.where(masks.reshape(*masks.shape, *spread), zeros, patches)
    engine = engine or ocr_engine()
    read = {"real": [], "reconstruction": [], "floor": []}
    text_patches = []
    for b, length in enumerate(drawn.lengths.tolist()):
        n = length - 1  # the end-of-sequence patch is not text
        text_patches.append(n)
        for name, lines in (("real", patches), ("reconstruction", shown), ("floor", floor)):
            read[name].append(ocr_line(engine, line_image(lines[b, :n].clamp(0, 1).numpy()))[0] if n else "")
    kept = [t[: len(t) - int(cut)] for t, cut in zip(texts, drawn.truncated)]  # the text the line holds
    rates = {f"ocr_cer_{name}": cer(values, kept) for name, values in read.items()}
    # the literal target: read at >= 50% of the real line (1 - CER as the share read), floor beside it
    shares = {f"read_share_{name}": (1 - rates[f"ocr_cer_{name}"]) / (1 - rates["ocr_cer_real"])
              for name in ("reconstruction", "floor")} if rates["ocr_cer_real"] < 1 else {}
    gap = rates["ocr_cer_floor"] - rates["ocr_cer_real"]
    masked = sum(int(masks[b, :n].sum()) for b, n in enumerate(text_patches)) / max(sum(text_patches), 1)
    return {"checkpoint": checkpoint, "lines": len(index), "masked_share": masked, **rates, **shares,
            "recovered": (rates["ocr_cer_floor"] - rates["ocr_cer_reconstruction"]) / gap if gap > 0 else math.nan,
            "examples": [{"text": t, **{name: read[name][i] for name in read}} for i, t in enumerate(kept[:4])]}
