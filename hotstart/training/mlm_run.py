"""The `mlm` objective: a character-level BERT pretrained by masked-language modelling on a prepared
corpus, the index baseline of the pixel MAE (models/char_bert.py).

It reads the same corpus sequences an mae run draws as lines, with the same training settings unless
given (line_train_defaults: batch, schedule, languages sampled equally, evaluation), so "the same text
and budget" holds by default: pretrain both to the same --max-samples. Which positions are chosen, and
how each is corrupted, comes from (seed, stream, step, sequence index), as the MAE's masks do: a resumed
run, or a torchrun shard, corrupts exactly what one uninterrupted process would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import flag, save_yaml, to_dict
from ..errors import HotStartError
from ..models.char_bert import IGNORE, CharBert, CharBertConfig, bert_masking
from .config import TrainConfig, line_train_defaults
from .objective import Objective, validation_sample
from .precision import Precision


@dataclass
class MLMRunConfig:
    """A masked-language-model run: which prepared corpus, which model, how to train it."""

    data: str = field(metadata=flag(by_hand=True))
    """Folder written by `hotstart prepare`; each sequence is one example."""
    model: CharBertConfig = field(default_factory=CharBertConfig)
    train: TrainConfig = field(default_factory=line_train_defaults)
    objective: str = field(default="mlm", metadata=flag(cli=False))
    """What the run learns (training/objective.py)."""


class MaskedChars(Objective):
    """BERT's masked-language-model loss on character sequences."""

    name = "mlm"
    progress_metric = "val_acc"
    run_config = MLMRunConfig
    config: MLMRunConfig

    @classmethod
    def saved_model(cls, config: MLMRunConfig) -> CharBert:
        return CharBert(config.model)

    def check(self) -> None:
        """Vocabulary and length from the corpus; the fixed validation corruption, drawn once."""
        cfg, tc = self.config.model, self.config.train
        cfg.vocab_size, cfg.max_positions = len(self.corpus.vocab), self.corpus.seq_len
        cfg.validate()
        if tc.freeze_decoder:
            raise HotStartError("--freeze-decoder freezes a next-char run's GPT-2 decoder; an mlm run has none to freeze")
        self._val = validation_sample(self.corpus, tc.eval_sequences)
        self._val_batch = self._corrupt(self._val, stream=1)

    def _corrupt(self, index: np.ndarray, stream: int, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) inputs and labels of sequences `index`, each row's from (seed, stream, step, its index)."""
        rows = self.corpus.sequences(index).numpy()
        pairs = [bert_masking(row, self.config.model, np.random.default_rng([self.config.train.seed, stream, step, int(i)]))
                 for row, i in zip(rows, np.asarray(index).tolist())]
        return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))

    def build_model(self, progress: bool) -> CharBert:
        """BertForMaskedLM of the configured size over the corpus's characters; compiled if asked."""
        model = self.saved_model(self.config)
        if self.config.train.compile:
            model.bert.compile()
        return model

    def write_run_files(self, run_dir: Path) -> None:
        """config.yaml and vocab.json."""
        save_yaml(to_dict(self.config), run_dir / "config.yaml")
        self.corpus.vocab.save(run_dir / "vocab.json")

    def batch(self, index: np.ndarray, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) corrupted inputs and their labels at `step`."""
        return self._corrupt(index, stream=0, step=step)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy on the chosen positions."""
        ids, labels = batch
        loss, _ = model(ids, labels)
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """Loss and accuracy on the chosen positions of the validation sequences, under fixed corruption."""
        was_training = model.training
        model.eval()
        ids, labels = self._val_batch
        loss_sum, correct, count, size = 0.0, 0, 0, self.config.train.batch_size
        for start in range(0, len(ids), size):
            x, y = ids[start : start + size].to(precision.device), labels[start : start + size].to(precision.device)
            with precision.autocast():
                _, logits = model(x, y)  # the labelled positions', in order
            target = y[y != IGNORE]
            loss_sum += nn.functional.cross_entropy(logits.float(), target, reduction="sum").item()
            correct += int((logits.argmax(-1) == target).sum())
            count += len(target)
        model.train(was_training)
        return {"val_loss": loss_sum / max(count, 1), "val_acc": correct / max(count, 1)}

    def summary_fields(self) -> dict[str, Any]:
        """Model size and masking."""
        cfg = self.config.model
        return {"objective": self.name, "size": cfg.size, "vocab_size": cfg.vocab_size, "mask_prob": cfg.mask_prob,
                "val_sequences": len(self._val)}

    def describe(self) -> str:
        """mlm and its size."""
        return f"mlm {self.config.model.size}"

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Embeddings (the character table and positions), encoder blocks, MLM head, total."""
        count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)
        bert = model.bert.bert
        return {"embeddings": count(bert.embeddings), "encoder": count(bert.encoder),
                "total": count(model)}
