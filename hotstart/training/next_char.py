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
from ..data.holdout import Holdout, held_out_ids
from ..errors import HotStartError
from ..models.embedding_stats import embedding_spread, input_table
from ..models.hotstart_lm import HotStartLM
from .evaluate import evaluate, held_out_metrics
from .objective import Objective
from .precision import Precision
from .run import RunConfig, build_model, write_run_files


def next_char_loss(model: nn.Module, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of predicting batch[:, 1:] from batch[:, :-1]; (B, L) -> scalar. A pair
    (inputs, targets) reads the first and predicts the second (held-out characters, data/holdout.py)."""
    inputs, targets = batch if isinstance(batch, tuple) else (batch, batch)
    _, loss = model(inputs[:, :-1], targets[:, 1:], return_logits=False)
    return loss


class NextChar(Objective):
    """Next-character prediction with a HotStartLM (index or vision input)."""

    name = "next-char"
    progress_metric = "val_acc"
    run_config = RunConfig
    writes = "characters"
    config: RunConfig

    def check(self) -> None:
        """The vocabulary size comes from the corpus; the decoder must cover its sequences."""
        cfg = self.config
        cfg.model.validate()
        cfg.model.vocab_size = len(self.corpus.vocab)
        if cfg.model.decoder.n_positions < self.corpus.seq_len:
            raise HotStartError(f"decoder n_positions {cfg.model.decoder.n_positions} < corpus seq_len {self.corpus.seq_len}")
        val = self.corpus.val_index
        self._val = self.corpus.sequences(val[: cfg.train.eval_sequences] if cfg.train.eval_sequences else val)
        held = held_out_ids(self.corpus.vocab, cfg.holdout)
        self.holdout = Holdout(held, len(self.corpus.vocab)) if len(held) else None
        # what the model reads at evaluation: an index model has no row for a held-out character but <unk>'s
        index = cfg.model.input.kind == "index"
        self._val_inputs = self.holdout.inputs(self._val) if self.holdout is not None and index else self._val

    def build_model(self, progress: bool) -> HotStartLM:
        """The LM, its glyph bank rendered for vision; the decoder frozen or compiled if asked."""
        tc = self.config.train
        model = build_model(self.config.model, self.corpus.vocab, progress)
        if tc.freeze_decoder:
            model.decoder.requires_grad_(False)
        if tc.compile:
            model.decoder.compile()  # in place: parameter names, and so checkpoints, stay the same
        if self.holdout is not None:
            model.exclude_outputs(self.holdout.ids)
        return model

    def write_run_files(self, run_dir: Path) -> None:
        """config.yaml, vocab.json and (vision) render.json."""
        write_run_files(run_dir, self.config, self.corpus.vocab)

    def batch(self, index: np.ndarray, step: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, L) IDs of sequences `index`; the step does not matter. With held-out characters, the
        inputs (held-out ones as <unk>) and the targets (held-out ones as <pad>, ignored) apart."""
        ids = self.corpus.sequences(index)
        if self.holdout is None:
            return ids
        return self.holdout.inputs(ids), self.holdout.targets(ids)

    def loss(self, model: nn.Module, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Next-character cross-entropy."""
        return next_char_loss(model, batch)

    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """Loss, accuracy, perplexity, and the spread of the input vectors (a fraction of a second)."""
        metrics = evaluate(model, self._val, precision, self.config.train.batch_size, inputs=self._val_inputs)
        spread = embedding_spread(input_table(model))
        held = {} if self.holdout is None else held_out_metrics(model, self._val, self._val_inputs, self.holdout.ids,
                                                                precision, self.config.train.batch_size)
        return {"val_loss": metrics["val_loss"], "val_acc": metrics["val_acc"], "val_ppl": metrics["val_ppl"],
                "input_mean_cosine": spread["mean_cosine"], "input_near_duplicates": spread["near_duplicate_share"], **held}

    def summary_fields(self) -> dict[str, Any]:
        """Input path, encoder, resolution and crop (None for index), decoder shape."""
        inp = self.config.model.input
        vision = inp.kind == "vision"
        return {"objective": self.name, "input": inp.kind, "encoder": inp.encoder.name if vision else None,
                "res": inp.render.res if vision else None, "crop": inp.render.crop if vision else None,
                "decoder": to_dict(self.config.model.decoder), "head": self.config.model.head,
                "held_out": 0 if self.holdout is None else len(self.holdout.ids)}

    def describe(self) -> str:
        """index or vision."""
        return self.config.model.input.kind

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Input path (encoder, adapter), decoder, head, total."""
        return model.parameter_counts()
