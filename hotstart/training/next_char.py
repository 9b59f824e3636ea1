"""HotStart's objective: predict the next character ID from the ones before, through the index or the
vision input path (paper sec. "Key Designs"). What it hands the shared loop (objective.py):

    batch      (B, L) character IDs of the prepared corpus's sequences
    loss       cross-entropy of tokens 1..L-1, <pad> excluded (the model's fused head)
    evaluate   val_loss, val_acc, val_ppl on the fixed validation sequences, and how distinct the
               characters' input vectors are (a collapsed encoder keeps a model on the
               most-frequent-character plateau)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import to_dict
from ..errors import HotStartError
from ..models.embedding_stats import embedding_spread, input_table
from ..models.hotstart_lm import HotStartLM
from .evaluate import evaluate
from .objective import Objective
from .precision import Precision
from .run import RunConfig, build_model, write_run_files


def next_char_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting batch[:, 1:] from batch[:, :-1]; (B, L) -> scalar."""
    _, loss = model(batch[:, :-1], batch[:, 1:], return_logits=False)
    return loss


class NextChar(Objective):
    """Next-character prediction with a HotStartLM (index or vision input)."""

    name = "next-char"
    progress_metric = "val_acc"
    config: RunConfig

    def check(self) -> None:
        """The vocabulary size comes from the corpus; the decoder must cover its sequences."""
        cfg = self.config
        cfg.model.input.validate()
        cfg.model.vocab_size = len(self.corpus.vocab)
        if cfg.model.decoder.n_positions < self.corpus.seq_len:
            raise HotStartError(f"decoder n_positions {cfg.model.decoder.n_positions} < corpus seq_len {self.corpus.seq_len}")
        val = self.corpus.val_index
        self._val = self.corpus.sequences(val[: cfg.train.eval_sequences] if cfg.train.eval_sequences else val)

    def build_model(self, progress: bool) -> HotStartLM:
        """The LM, its glyph bank rendered for vision; the decoder frozen or compiled if asked."""
        tc = self.config.train
        model = build_model(self.config.model, self.corpus.vocab, progress)
        if tc.freeze_decoder:
            model.decoder.requires_grad_(False)
        if tc.compile:
            model.decoder.compile()  # in place: parameter names, and so checkpoints, stay the same
        return model

    def write_run_files(self, run_dir: Path) -> None:
        """config.yaml, vocab.json and (vision) render.json."""
        write_run_files(run_dir, self.config, self.corpus.vocab)

    def batch(self, index: np.ndarray, step: int) -> torch.Tensor:
        """(B, L) IDs of sequences `index`; the step does not matter."""
        return self.corpus.sequences(index)

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Next-character cross-entropy."""
        return next_char_loss(model, batch)

    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """Loss, accuracy, perplexity, and the spread of the input vectors (a fraction of a second)."""
        metrics = evaluate(model, self._val, precision, self.config.train.batch_size)
        spread = embedding_spread(input_table(model))
        return {"val_loss": metrics["val_loss"], "val_acc": metrics["val_acc"], "val_ppl": metrics["val_ppl"],
                "input_mean_cosine": spread["mean_cosine"], "input_near_duplicates": spread["near_duplicate_share"]}

    def summary_fields(self) -> dict[str, Any]:
        """Input path, encoder, resolution and crop (None for index), decoder shape."""
        inp = self.config.model.input
        vision = inp.kind == "vision"
        return {"objective": self.name, "input": inp.kind, "encoder": inp.encoder.name if vision else None,
                "res": inp.render.res if vision else None, "crop": inp.render.crop if vision else None,
                "decoder": to_dict(self.config.model.decoder)}

    def describe(self) -> str:
        """index or vision."""
        return self.config.model.input.kind

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Input path (encoder, adapter), decoder, head, total."""
        return model.parameter_counts()
