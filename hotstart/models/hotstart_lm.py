"""The language model: an input path, the GPT-2 decoder, and a softmax head over character IDs.

    index path:   ids -> wte (V x n_embd)                                 -> decoder -> lm_head
    vision path:  ids -> glyph bank (V x R x R) -> encoder -> adapter -> LN -> decoder -> lm_head

Visual-in, token-out (paper sec. "Key Designs" 3): both paths share the decoder and the head, so
loss, accuracy and perplexity are directly comparable; the input module is the only difference.
By default the head is not tied to the input embedding, because a tied head would give the index
path a second use of its table that the vision path cannot have. `tie_head` ties them as Hugging
Face's GPT2LMHeadModel does by default: the index path's head then is its wte, and the vision
path's head keeps a table of its own, initialised and optimised as an embedding table (no weight
decay), which is what GPT2LMHeadModel fed `inputs_embeds` would train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import flag
from ..data.prepared import PAD_ID
from ..errors import HotStartError
from ..render.glyph import GlyphRenderer, RenderConfig
from .decoder import (
    DECODER_SIZES,
    DecoderConfig,
    build_decoder,
    decoder_parameters,
    decoder_size,
)
from .encoders import EncoderConfig, GlyphEncoder, paper_width
from .fused_loss import head_cross_entropy

INPUT_KINDS = ("index", "vision")
PIXEL_NORMS = ("standardize", "position", "raw")
OUTPUT_NORMS = ("layernorm", "none")
INPUT_SCALES = ("none", "index-init")
HEADS = ("linear", "glyph")
GLYPH_SOURCES = ("font", "noise")
NOISE_SEED = 0
"""Seed of --glyph-source noise's pixel shuffles: fixed, so every run and seed reads the same noise images, as
every run reads the same glyphs."""


@dataclass
class InputConfig:
    """How characters enter the decoder."""

    kind: str = field(default="index", metadata=flag("input"))
    """index (ID embedding) or vision (rendered glyph -> encoder -> adapter)."""
    embed_init_std: float = 0.02
    """index: std of the normal init of wte (GPT-2's 0.02)."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """vision: which glyph encoder."""
    render: RenderConfig = field(default_factory=RenderConfig)
    """vision: how glyphs are rendered (resolution, margin, crop, font)."""
    pixel_norm: str = "standardize"
    """vision: standardize (one mean and std over the whole bank), position (each pixel position
    standardised over the vocabulary, so a position every glyph inks alike carries no offset) or raw
    (ink coverage in [0, 1])."""
    output_norm: str = "layernorm"
    """vision: layernorm on the adapter output (unit scale per vector) or none."""
    input_scale: str = "none"
    """vision: none, or index-init: the input vectors scaled by a fixed factor so that at
    initialisation their mean length equals the index table's (embed_init_std * sqrt(n_embd))."""
    center: bool = field(default=False, metadata=flag("center-inputs", dest="center"))
    """vision: subtract the vocabulary's mean input vector from every character's (training then
    encodes the whole vocabulary at every step, not only a batch's distinct glyphs)."""
    glyph_permute: int | None = None
    """vision, a control: each character reads another character's glyph, by a fixed permutation drawn with
    this seed (the specials keep theirs); None = each reads its own. Same pictures, same adapter, same
    optimiser, but no visual similarity between related characters."""
    glyph_source: str = "font"
    """vision, a control: font (the rendered glyphs) or noise: each character's image is its own glyph's
    pixels in a fixed random order (our reading of "a random image with its glyph's ink share": the same ink
    share and the same grey levels, no strokes)."""
    mix_fonts: list[str] = field(default_factory=list, metadata=flag("mix-font", repeat=True))
    """vision: more fonts ("path" or "path#face") that training draws glyphs in: at every step each
    glyph encoded is drawn in the primary font or one of these, chosen at random (per glyph draw);
    evaluation and generation use the primary font (or the one `hotstart eval --font` gives)."""

    def validate(self) -> None:
        """Raise HotStartError for an unknown choice."""
        for name, value, allowed in (
            ("input", self.kind, INPUT_KINDS),
            ("pixel_norm", self.pixel_norm, PIXEL_NORMS),
            ("output_norm", self.output_norm, OUTPUT_NORMS),
            ("input_scale", self.input_scale, INPUT_SCALES),
            ("glyph_source", self.glyph_source, GLYPH_SOURCES),
        ):
            if value not in allowed:
                raise HotStartError(f"unknown {name} '{value}'; choose one of {', '.join(allowed)}")
        if not (math.isfinite(self.embed_init_std) and self.embed_init_std > 0):
            raise HotStartError(f"--embed-init-std must be a positive number, got {self.embed_init_std}")
        mix_ok = isinstance(self.mix_fonts, (list, tuple)) and all(isinstance(f, str) and f for f in self.mix_fonts)
        if not mix_ok:
            raise HotStartError(f'mix_fonts must be a list of "path" or "path#face" strings, got {self.mix_fonts!r}')
        if self.mix_fonts and self.kind != "vision":
            raise HotStartError("--mix-font draws glyphs in more fonts; it needs --input vision")
        if self.glyph_permute is not None and self.glyph_permute < 0:
            raise HotStartError(f"--glyph-permute takes a seed >= 0, got {self.glyph_permute}")
        controls = self.glyph_permute is not None or self.glyph_source != "font"
        if controls and self.kind != "vision":
            raise HotStartError("--glyph-permute and --glyph-source change the glyphs a vision model reads; they need --input vision")
        if self.kind == "vision":
            self.encoder.validate()
            self.render.validate()


@dataclass
class ModelConfig:
    """Everything needed to rebuild the model's modules (the weights come from a checkpoint)."""

    vocab_size: int = field(metadata=flag(cli=False))
    input: InputConfig = field(default_factory=InputConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    tie_head: bool = False
    """Tie lm_head to the input table as GPT2LMHeadModel does (index: the head is wte; vision: the head
    keeps its own table, as an embedding table without weight decay)."""
    head: str = "linear"
    """linear (a table of its own) | glyph (vision only): logits = hidden . encoded glyph + a
    per-character bias + a residual table started at zero, so a character never trained on still
    gets a score from its picture (a tied head without bias and residual is known to train far worse)."""

    def validate(self) -> None:
        """Raise HotStartError for a head the input path cannot have."""
        self.input.validate()
        if self.head not in HEADS:
            raise HotStartError(f"unknown --head '{self.head}'; choose one of {', '.join(HEADS)}")
        if self.head == "glyph" and self.input.kind != "vision":
            raise HotStartError("--head glyph scores characters by their encoded glyphs; it needs --input vision")
        if self.head == "glyph" and self.tie_head:
            raise HotStartError("--tie-head and --head glyph are two ways of tying the head; choose one")


class IndexInput(nn.Module):
    """The index baseline: an ordinary ID embedding table."""

    def __init__(self, vocab_size: int, n_embd: int, init_std: float) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        nn.init.normal_(self.wte.weight, std=init_std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) IDs -> (B, T, n_embd) embeddings."""
        return self.wte(ids)  # (B, T) -> (B, T, n_embd)


class VisionInput(nn.Module):
    """Look up each ID's glyph in the bank and encode it.

    A glyph is the same picture every time its character appears, so training encodes only the
    distinct IDs of a batch and scatters the vectors back; with gradients off (evaluation,
    generation, in eval mode) the whole vocabulary is encoded once into a table that is reused until
    a weight or the bank changes.
    """

    def __init__(self, cfg: InputConfig, n_embd: int, glyphs: torch.Tensor, encoder_width: int = 0,
                 mix_glyphs: torch.Tensor | None = None) -> None:
        super().__init__()
        self.pixel_norm, self.center = cfg.pixel_norm, cfg.center
        self.encoder = GlyphEncoder(cfg.encoder, n_embd, cfg.render.res, encoder_width)
        self.norm = nn.LayerNorm(n_embd) if cfg.output_norm == "layernorm" else nn.Identity()
        # The bank is derived from the font and render settings, so it is not saved with the
        # weights; the pixel statistics are, so that a bank rendered differently at evaluation
        # time (another crop or font) is standardised exactly as in training.
        self.register_buffer("glyphs", glyphs.float(), persistent=False)  # (V, R, R)
        # the other fonts' banks that training draws from (--mix-font), (K, V, R, R); the pixel
        # statistics are then over every font's glyphs, as training sees them all
        self.register_buffer("mix_glyphs", None if mix_glyphs is None else mix_glyphs.float(), persistent=False)
        seen = glyphs.float() if mix_glyphs is None else torch.cat([glyphs[None], mix_glyphs]).flatten(0, 1).float()
        if cfg.pixel_norm == "position":  # statistics per pixel position, over the vocabulary
            mean, std = seen.mean(dim=0, keepdim=True), seen.std(dim=0, keepdim=True)  # (1, R, R)
        else:
            mean, std = seen.mean().reshape(1), seen.std().reshape(1)
        self.register_buffer("pixel_mean", mean)
        self.register_buffer("pixel_std", std.clamp_min(1e-6))
        self._table_key: tuple | None = None
        self._table: torch.Tensor | None = None
        # index-init: a fixed factor, measured on the initial weights and saved with them, that brings
        # the mean input length to an index table's initial one (embed_init_std * sqrt(n_embd))
        self.register_buffer("output_scale", torch.ones(1))
        if cfg.input_scale == "index-init":
            self.eval()  # BatchNorm must not count this measurement in its running statistics
            with torch.no_grad():
                length = self.embed_glyphs(self.glyphs).norm(dim=1).mean()
            self.train()
            self.output_scale.fill_(cfg.embed_init_std * math.sqrt(n_embd) / length.clamp_min(1e-12).item())

    def set_glyphs(self, glyphs: torch.Tensor) -> None:
        """Swap in another bank of the same vocabulary (e.g. another crop or font)."""
        if glyphs.shape[0] != self.glyphs.shape[0]:
            raise HotStartError(f"glyph bank has {glyphs.shape[0]} rows, the model's vocabulary {self.glyphs.shape[0]}")
        self.glyphs = glyphs.to(self.pixel_mean.device, torch.float32)
        self._table = None

    def embed_glyphs(self, glyphs: torch.Tensor) -> torch.Tensor:
        """(N, R, R) thumbnails -> (N, n_embd) decoder inputs (before centring)."""
        if self.pixel_norm != "raw":
            if self.pixel_mean.dim() == 3 and self.pixel_mean.shape[1:] != glyphs.shape[1:]:
                raise HotStartError(f"this model standardises each of its {self.pixel_mean.shape[-1]}x"
                                    f"{self.pixel_mean.shape[-1]} pixel positions; it cannot read "
                                    f"{glyphs.shape[-1]}x{glyphs.shape[-1]} glyphs (evaluate it at its own --res)")
            glyphs = (glyphs - self.pixel_mean) / self.pixel_std
        return self.norm(self.encoder(glyphs)) * self.output_scale

    def _weights_key(self) -> tuple:
        """What the cached table depends on. Version counters catch ordinary in-place edits (copy_,
        load_state_dict); fused optimizer kernels update weights without bumping them, so a sum and
        a sum of squares of every weight (microseconds for an encoder) catch those. BatchNorm's
        running statistics count as weights here."""
        params = list(self.parameters()) + [b for b in self.encoder.buffers() if b.is_floating_point()]
        with torch.no_grad():
            fingerprint = torch.stack([t for p in params for t in (p.sum(), p.square().sum())]).tolist() if params else []
        return (
            tuple(p._version for p in params),
            tuple(p.data_ptr() for p in params),
            tuple(fingerprint),
            self.glyphs.data_ptr(),
            self.glyphs._version,
            torch.is_autocast_enabled(self.glyphs.device.type),
        )

    def table(self) -> torch.Tensor:
        """The whole vocabulary encoded, (V, n_embd), cached until weights or bank change."""
        key = self._weights_key()
        if self._table is None or key != self._table_key:
            self._table = self._centred(self.embed_glyphs(self.glyphs))
            self._table_key = key
        return self._table

    def _centred(self, table: torch.Tensor) -> torch.Tensor:
        """(V, n_embd) vocabulary table, less its mean row when centring is on."""
        return table - table.mean(dim=0, keepdim=True) if self.center else table

    def vocabulary(self) -> torch.Tensor:
        """(V, n_embd) every character's glyph encoded: the cached table without gradients, else fresh."""
        if not self.training and not torch.is_grad_enabled():
            return self.table()
        return self._centred(self.embed_glyphs(self.glyphs))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) IDs -> (B, T, n_embd) encoded glyphs."""
        if not self.training and not torch.is_grad_enabled():  # evaluation and generation
            return F.embedding(ids, self.table())  # (B, T) -> (B, T, n_embd)
        if self.center:  # the vocabulary's mean needs every glyph encoded
            every = torch.arange(len(self.glyphs), device=ids.device)
            return F.embedding(ids, self._centred(self.embed_glyphs(self.drawn(every))))  # (V, n_embd) -> (B, T, n_embd)
        unique, inverse = torch.unique(ids, return_inverse=True)  # distinct IDs of the batch
        # F.embedding rather than [inverse]: the same gather, with a several times faster backward
        return F.embedding(inverse, self.embed_glyphs(self.drawn(unique)))  # (U, n_embd) -> (B, T, n_embd)

    def drawn(self, rows: torch.Tensor) -> torch.Tensor:
        """(N,) vocabulary IDs -> (N, R, R) their glyphs as a training step sees them: in the primary
        font, or with --mix-font each in a font chosen at random (uniform over all of them)."""
        if self.mix_glyphs is None:
            return self.glyphs[rows]
        font = torch.randint(len(self.mix_glyphs) + 1, rows.shape, device=rows.device)  # 0: the primary
        other = self.mix_glyphs[(font - 1).clamp(min=0), rows]  # (N, R, R): only the rows asked for
        return torch.where((font == 0)[:, None, None], self.glyphs[rows], other)


class HotStartLM(nn.Module):
    """Input path -> GPT-2 decoder (fed through inputs_embeds) -> linear head over the vocabulary."""

    def __init__(self, cfg: ModelConfig, glyphs: torch.Tensor | None = None, mix_glyphs: torch.Tensor | None = None) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        d = cfg.decoder
        # Decoder and head are built before the input path, so index and vision runs with the
        # same seed start from identical decoder and head weights: only the input differs.
        self.decoder = build_decoder(d)
        self.lm_head = nn.Linear(d.n_embd, cfg.vocab_size, bias=False)
        nn.init.normal_(self.lm_head.weight, std=0.02)
        if cfg.head == "glyph":  # lm_head is the residual table: zero, so the glyphs alone score at first
            nn.init.zeros_(self.lm_head.weight)
            self.head_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self._kept: torch.Tensor | None = None  # output classes a training step's softmax covers (all: None)
        if cfg.input.kind == "index":
            self.input: nn.Module = IndexInput(cfg.vocab_size, d.n_embd, cfg.input.embed_init_std)
            if cfg.tie_head:  # one table, read as the input and as the head (GPT2LMHeadModel's tying)
                self.lm_head.weight = self.input.wte.weight
        else:
            if glyphs is None:
                raise ValueError("a vision model needs its glyph bank")
            self.input = VisionInput(cfg.input, d.n_embd, glyphs, self._encoder_width(), mix_glyphs)

    def _encoder_width(self) -> int:
        """The glyph encoder's base width: set, derived from the paper's counts, or 0 (derive ours)."""
        enc = self.config.input.encoder
        if enc.width or enc.size != "paper":
            return enc.width
        decoder_params = sum(p.numel() for p in self.decoder.parameters() if p.requires_grad)
        return paper_width(enc, self.config.decoder.n_embd, self.config.input.render.res, decoder_params,
                           decoder_parameters(DECODER_SIZES["gpt2-small"]))

    def forward(self, ids: torch.Tensor, targets: torch.Tensor | None = None,
                return_logits: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(B, T) ids -> (B, T, V) logits, and the mean cross-entropy over non-pad targets if given.

        return_logits=False (the training step) returns no logits, and on a CPU computes the loss
        chunk by chunk without ever holding them (fused_loss.py: same value and gradients, far less
        time spent by the kernel zeroing fresh pages). On CUDA the plain path stays: its caching
        allocator already reuses the memory, and the chunked path has not been measured there.
        """
        x = self.input(ids)  # (B, T, n_embd)
        h = self.decoder(inputs_embeds=x, use_cache=False).last_hidden_state  # (B, T, n_embd)
        weight, bias = self.output_layer()  # (V, n_embd), (V,) or None
        if self._kept is not None and self.training:  # held-out characters: not in the softmax at all
            kept = self._kept.to(weight.device)
            weight, bias = weight[kept], (bias[kept] if bias is not None else None)
            if targets is not None:  # ID -> its row among the kept; PAD (ID 0, always kept) stays 0
                targets = self._kept_row.to(targets.device)[targets]
        if not return_logits and targets is not None and h.device.type == "cpu":
            if bias is not None:  # the fused loss takes no bias: a constant 1 feature carries it
                h, weight = torch.cat([h, h.new_ones(*h.shape[:-1], 1)], -1), torch.cat([weight, bias[:, None]], -1)
            return None, head_cross_entropy(h.flatten(0, 1), weight, targets.flatten(), PAD_ID)
        logits = F.linear(h, weight, bias)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=PAD_ID)
        return logits, loss

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head as (V, n_embd) weights and a (V,) bias or None: lm_head's table, or for the glyph
        head every character's encoded glyph plus the residual table, with the per-character bias."""
        if self.config.head == "linear":
            return self.lm_head.weight, None
        return self.input.vocabulary().to(self.lm_head.weight.dtype) + self.lm_head.weight, self.head_bias

    def exclude_outputs(self, held: torch.Tensor | None) -> None:
        """Leave the IDs `held` out of every training step's softmax (None: none); evaluation keeps the
        whole vocabulary. Targets must not name them (data/holdout.py sets those to <pad>)."""
        if held is None or not len(held):
            self._kept = None
            return
        keep = torch.ones(self.config.vocab_size, dtype=torch.bool)
        keep[held] = False
        self._kept = keep.nonzero().squeeze(1)
        self._kept_row = torch.full((self.config.vocab_size,), PAD_ID, dtype=torch.long)
        self._kept_row[self._kept.cpu()] = torch.arange(len(self._kept))

    def no_weight_decay(self) -> set[str]:
        """Parameters AdamW leaves undecayed besides biases and norms: the embedding tables, and a tied
        head (for vision, GPT2LMHeadModel's otherwise unused wte)."""
        names = {f"{name}.weight" for name, module in self.named_modules() if isinstance(module, nn.Embedding)}
        if self.config.tie_head or self.config.head == "glyph":  # the glyph head's residual: a table too
            names.add("lm_head.weight")
        return names

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part: input path (and its encoder/adapter), decoder, head, total."""
        count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)
        counts = {"input": count(self.input)}
        if isinstance(self.input, VisionInput):
            counts["input.encoder"] = count(self.input.encoder.encoder)
            counts["input.adapter"] = count(self.input.encoder.adapter) + count(self.input.norm)
        counts["decoder"] = count(self.decoder)
        counts["lm_head"] = count(self.lm_head) + (self.head_bias.numel() if self.config.head == "glyph" else 0)
        counts["total"] = count(self)
        return counts


def glyph_bank(tokens: list[str], specials: tuple[str, ...], render: RenderConfig, progress: bool = True) -> torch.Tensor:
    """Render (or load from the cache) the (V, R, R) bank of a vocabulary."""
    bank = GlyphRenderer(render).render_bank(tokens, specials=specials, progress=progress)
    return torch.from_numpy(np.ascontiguousarray(bank.glyphs))


def control_bank(glyphs: torch.Tensor, cfg: InputConfig, n_specials: int) -> torch.Tensor:
    """The (V, R, R) bank a control run reads: with glyph_source noise each row's pixels shuffled by a fixed
    permutation of its own, then with glyph_permute the rows after the specials permuted among themselves.
    With neither, `glyphs` itself."""
    if cfg.glyph_source == "noise":
        generator = torch.Generator().manual_seed(NOISE_SEED)
        flat = glyphs.flatten(1)  # (V, R*R)
        order = torch.rand(flat.shape, generator=generator).argsort(dim=1)  # one pixel order per character
        glyphs = flat.gather(1, order).view_as(glyphs)
    if cfg.glyph_permute is not None:
        generator = torch.Generator().manual_seed(cfg.glyph_permute)
        rows = torch.arange(len(glyphs))
        rows[n_specials:] = n_specials + torch.randperm(len(glyphs) - n_specials, generator=generator)
        glyphs = glyphs[rows]
    return glyphs


def parameter_table(size: str, vocab_size: int, res: int = 8) -> list[dict[str, int | str]]:
    """Trainable parameters per part for the index path and each encoder at decoder `size`."""
    rows = []
    blank_bank = torch.zeros(vocab_size, res, res)  # counts do not depend on the pixels
    for kind, encoder in (("index", None), ("vision", "orig"), ("vision", "opt"), ("vision", "simp")):
        inp = InputConfig(kind=kind, encoder=EncoderConfig(name=encoder or "simp"), render=RenderConfig(res=res))
        model = HotStartLM(ModelConfig(vocab_size, inp, decoder_size(size)), blank_bank if kind == "vision" else None)
        rows.append({"model": kind if encoder is None else f"vision-{encoder}", **model.parameter_counts()})
    return rows
