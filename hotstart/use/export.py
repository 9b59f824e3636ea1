"""Export a run to a plain `transformers` folder (`hotstart export`).

Every kind of run leaves the toolkit as `transformers` classes that load without hotstart:

    next-char              GPT2LMHeadModel / LlamaForCausalLM + a character tokenizer (below)
    mae                    ViTMAEForPreTraining (PIXEL-M4's masked autoencoder over a line laid on a square grid)
    mlm                    BertForMaskedLM + a character tokenizer
    next-patch, pixar      the decoder as GPT2Model / LlamaModel, and in pixel_lm.safetensors the start vector, patch
                           embedding and pixel head that surround it
    dual                   the same, plus the character embedding and head

Each folder's README.md says how to draw input for it and how its parts fit together; the run's own files
(config.yaml, vocab.json, render.json, its checkpoint) are kept beside it in `hotstart/`.

A trained HotStart model *is* a GPT-2 (or, with `--decoder llama`, a Llama) language model once its
input path is written down as an embedding table: the index path already is one, and a vision model's
glyph encoder gives every vocabulary character one fixed vector, so encoding each glyph once bakes the
encoder into the token table. The export is therefore a `GPT2LMHeadModel` or `LlamaForCausalLM`
(untied head) plus a character-level fast tokenizer,
loadable with `AutoModelForCausalLM` / `AutoTokenizer` by code that never imports hotstart. The
encoder weights and render settings are kept beside it in `hotstart/`, so the table can be rebuilt
or extended to characters outside the vocabulary.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from ..data.prepared import PAD_ID, SEP_ID, SPECIALS, UNK_ID, Vocab
from ..errors import HotStartError
from ..models.hotstart_lm import HotStartLM


@torch.no_grad()
def input_table(model: HotStartLM) -> torch.Tensor:
    """(V, n_embd) fp32 vectors the model feeds the decoder for each vocabulary ID."""
    model.eval()
    ids = torch.arange(model.config.vocab_size, device=model.lm_head.weight.device)
    return model.input(ids.unsqueeze(0)).squeeze(0).float().cpu()


def to_transformers(model: HotStartLM) -> GPT2LMHeadModel | LlamaForCausalLM:
    """The same network as a `transformers` causal LM (GPT2LMHeadModel or LlamaForCausalLM, as its
    decoder): decoder weights copied, input path baked into the token table."""
    if model.config.head == "glyph":
        raise HotStartError("a run with --head glyph scores characters with a per-character bias that the head of "
                            "GPT2LMHeadModel and LlamaForCausalLM cannot hold; export runs with the linear head")
    config = model.decoder.config.to_dict()
    config.update(vocab_size=model.config.vocab_size, tie_word_embeddings=False, bos_token_id=SEP_ID,
                  eos_token_id=SEP_ID, pad_token_id=PAD_ID, use_cache=True)
    llama = model.config.decoder.kind == "llama"
    hf = LlamaForCausalLM(LlamaConfig.from_dict(config)) if llama else GPT2LMHeadModel(GPT2Config.from_dict(config))
    body = hf.model if llama else hf.transformer
    table = "embed_tokens.weight" if llama else "wte.weight"
    decoder_state = {k: v for k, v in model.decoder.state_dict().items() if k != table}
    missing, unexpected = body.load_state_dict(decoder_state, strict=False)
    if unexpected or set(missing) - {table}:
        raise RuntimeError(f"decoder layout differs from {type(hf).__name__}: {missing} {unexpected}")
    with torch.no_grad():
        body.get_input_embeddings().weight.copy_(input_table(model))
        hf.lm_head.weight.copy_(model.lm_head.weight.float().cpu())
    return hf.eval()


def character_tokenizer(vocab: Vocab, mask: bool = False) -> PreTrainedTokenizerFast:
    """A fast tokenizer that maps every character to its ID (unknown ones to <unk>) and joins them back; with
    `mask`, also BERT's [MASK] as the ID after the vocabulary (models/char_bert.py)."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab.tokens)}, unk_token=SPECIALS[UNK_ID]))
    tok.normalizer = normalizers.NFKC()  # the corpus was NFKC-normalised before counting
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one piece per character
    tok.decoder = decoders.Fuse()  # characters join without spaces
    tok.add_special_tokens(list(SPECIALS))
    extra = {}
    if mask:
        tok.add_special_tokens([MASK_TOKEN])  # the next free ID: len(vocab), CharBertConfig.mask_id
        extra["mask_token"] = MASK_TOKEN
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=SPECIALS[UNK_ID], pad_token=SPECIALS[PAD_ID],
                                   eos_token=SPECIALS[SEP_ID], bos_token=SPECIALS[SEP_ID], **extra)


MASK_TOKEN = "[MASK]"


def export_run(run_dir: str | Path, out: str | Path, checkpoint: str = "best", overwrite: bool = False) -> Path:
    """Write `out`: a transformers folder for the run's kind (module docstring), with its README.md and the
    run's own files in out/hotstart/."""

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise HotStartError(f"{out} is not empty; choose another --out or pass --overwrite")
    from ..training.run_folder import open_run

    folder = open_run(run_dir)
    folder.require(_EXPORTS, f", which has no export; export one of {', '.join(_EXPORTS)}")
    folder.weights(checkpoint)  # best or last, refused in one line before anything is written
    readme = _EXPORTS[folder.objective](Path(run_dir), out, checkpoint)
    own = out / "hotstart"
    own.mkdir(exist_ok=True)
    for name in ("config.yaml", "vocab.json", "render.json"):
        if (Path(run_dir) / name).is_file():
            shutil.copy2(Path(run_dir) / name, own / name)
    shutil.copy2(Path(run_dir) / "checkpoints" / f"{checkpoint}.safetensors", own / f"{checkpoint}.safetensors")
    (out / "README.md").write_text(readme, encoding="utf-8")
    return out


def _export_next_char(run_dir: Path, out: Path, checkpoint: str) -> str:
    from ..training.run import load_run

    run = load_run(run_dir, checkpoint=checkpoint, progress=False)
    to_transformers(run.model).save_pretrained(out)
    character_tokenizer(run.corpus.vocab).save_pretrained(out)
    return (f"# {run_dir.name}: a HotStart character LM\n\nLoad it with `AutoModelForCausalLM.from_pretrained` and "
            "`AutoTokenizer.from_pretrained` on this folder: one token per character. A vision run's glyph encoder is "
            "baked into the token table; hotstart/ holds the encoder and render settings to rebuild it.\n")


def _export_mae(run_dir: Path, out: Path, checkpoint: str) -> str:
    from ..config import from_dict, load_yaml
    from ..models.mae import PixelMAE
    from ..training.checkpoint import load_weights
    from ..training.mae_run import MAERunConfig

    cfg = from_dict(MAERunConfig, load_yaml(run_dir / "config.yaml"))
    model = PixelMAE(cfg.model)
    load_weights(model, run_dir / "checkpoints" / f"{checkpoint}.safetensors")
    model.mae.save_pretrained(out)
    m, g = cfg.model, cfg.model.grid
    return (f"# {run_dir.name}: a PIXEL-M4-style masked autoencoder over rendered lines\n\n"
            "Load it with `ViTMAEForPreTraining.from_pretrained` on this folder.\n\n"
            f"Input: one line of text drawn {m.line.patch} px high, black ink on white, as ink coverage (0 background, "
            f"1 full ink; {m.line.mode}), cut into {m.line.patch}x{m.line.patch} patches that end with one patch of full "
            f"ink (the end of the line) and are padded with blank patches to {g * g}; patch k goes to row k // {g}, "
            f"column k % {g} of a {g * m.line.patch} x {g * m.line.patch} image with {m.channels} channel(s): "
            f"`pixel_values` of shape (batch, {m.channels}, {g * m.line.patch}, {g * m.line.patch}). The settings that "
            "draw the line (fonts by name and sha256, margins, cells) are in hotstart/render.json; with hotstart "
            "installed, `LineRenderer(LineRenderConfig(**settings))` draws it and `hotstart.models.mae.grid_image` lays "
            "it out. `noise` (batch, patches) chooses the masked patches as ViTMAE does: the ones with the highest noise, "
            f"mask_ratio {m.mask_ratio} of them. `logits` are each patch's pixels"
            + (", normalised by the patch's own mean and variance (norm_pix_loss)." if m.norm_pix_loss else ".") + "\n")


def _export_mlm(run_dir: Path, out: Path, checkpoint: str) -> str:
    from ..config import from_dict, load_yaml
    from ..models.char_bert import CharBert
    from ..training.checkpoint import load_weights
    from ..training.mlm_run import MLMRunConfig

    cfg = from_dict(MLMRunConfig, load_yaml(run_dir / "config.yaml"))
    vocab = Vocab.load(run_dir / "vocab.json")
    model = CharBert(cfg.model)
    load_weights(model, run_dir / "checkpoints" / f"{checkpoint}.safetensors")
    model.bert.save_pretrained(out)
    character_tokenizer(vocab, mask=True).save_pretrained(out)
    return (f"# {run_dir.name}: a character BERT\n\nLoad it with `BertForMaskedLM.from_pretrained` and "
            "`AutoTokenizer.from_pretrained` on this folder: one token per character, `<unk>` for characters outside "
            f"the vocabulary, `{MASK_TOKEN}` (ID {cfg.model.mask_id}) where a character is to be predicted; it was "
            "trained with the attention mask covering every non-`<pad>` position.\n")


def _export_pixel_lm(run_dir: Path, out: Path, checkpoint: str) -> str:
    import json

    from safetensors.torch import save_file

    from ..config import from_dict, load_yaml, to_dict
    from ..models.dual_lm import DualLM
    from ..training.checkpoint import load_weights
    from ..training.dual_run import DualRunConfig

    saved = load_yaml(run_dir / "config.yaml")
    if saved.get("objective") == "dual":
        dual = DualLM(from_dict(DualRunConfig, saved).model)
        load_weights(dual, run_dir / "checkpoints" / f"{checkpoint}.safetensors")
        model, extra = dual.pixel, {"wte.weight": dual.wte.weight, "lm_head.weight": dual.lm_head.weight}
    else:
        from .generate import load_pixel_run

        model, extra = load_pixel_run(run_dir, checkpoint).model, {}
    cfg = model.config
    model.decoder.save_pretrained(out)
    parts = {"start": model.wpe_start, "patch_embed.weight": model.patch_embed.weight,
             "patch_embed.bias": model.patch_embed.bias, "head.weight": model.head.weight, "head.bias": model.head.bias,
             **extra}
    save_file({k: v.detach().float().contiguous().cpu() for k, v in parts.items()}, str(out / "pixel_lm.safetensors"))
    (out / "pixel_lm.json").write_text(json.dumps({"patch_len": cfg.patch_len, "head": cfg.head,
                                                   "norm_target": cfg.norm_target, "line": to_dict(cfg.line)}, indent=2))
    p, c = cfg.line.patch, cfg.channels
    return (f"# {run_dir.name}: a pixel language model ({saved.get('objective')})\n\n"
            f"The decoder loads with `AutoModel.from_pretrained` on this folder ({type(model.decoder).__name__}); "
            "pixel_lm.safetensors holds what surrounds it, pixel_lm.json its settings.\n\n"
            f"Input: one line drawn {p} px high as ink coverage (0 background, 1 full ink; {cfg.line.mode}, "
            f"{cfg.line.cell} cells; the fonts and settings in hotstart/render.json), cut into {p}x{p} patches "
            f"({'x3 channels, ' if c == 3 else ''}flattened row by row); {cfg.patch_len} neighbouring patch(es) make "
            f"a position of {cfg.patch_len * p * p * c} values. The position predicted at t comes from `start` and "
            "positions before t:\n\n"
            "    x = cat([start, positions[:, :-1] @ patch_embed.weight.T + patch_embed.bias], dim=1)\n"
            "    out = decoder(inputs_embeds=x).last_hidden_state @ head.weight.T + head.bias\n\n"
            + ("`out` is each pixel's value (mean squared error" + (", against each patch standardised)" if cfg.norm_target else ")")
               if cfg.head == "mse" else "`out` is each pixel's ink logit (sigmoid: the probability of ink)")
            + (". The character embedding `wte.weight` and head `lm_head.weight` (DualGPT's text path) read and "
               "write character IDs of hotstart/vocab.json through the same decoder" if extra else "") + ".\n")


_EXPORTS = {"next-char": _export_next_char, "mae": _export_mae, "mlm": _export_mlm, "next-patch": _export_pixel_lm,
            "pixar": _export_pixel_lm, "dual": _export_pixel_lm}
"""objective -> the function that writes its export folder and returns its README."""
