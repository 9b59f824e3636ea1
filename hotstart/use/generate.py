"""Generation from runs (`hotstart generate`). From a next-char run, characters sampled one at a time
(`generate`, `stream`). From a pixel LM run (next-patch, pixar, dual): the prompt drawn as the run draws its
lines, continued greedily patch by patch, drawn as one image, and read back as text with its readability
(analysis/readback.py: nearest glyphs where every patch is one character cell, OCR for running text)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from ..analysis.readback import GlyphReader, OcrReader, line_reader
from ..data.prepared import PAD_ID, SEP_ID, Vocab
from ..errors import HotStartError
from ..models.dual_lm import DualLM
from ..models.hotstart_lm import HotStartLM
from ..models.pixel_lm import PixelLM, PixelLMConfig
from ..render.fonts import describe_chars
from ..render.line import LineRenderer, line_image
from ..training.checkpoint import read_json


def _objectives() -> dict[str, Any]:
    """The loop's registry of objectives; those that write pixels are the runs `hotstart generate` draws and
    reads back (DualGPT through its pixel path)."""
    from ..training.loop import OBJECTIVES

    return OBJECTIVES


@dataclass
class LoadedPixelRun:
    """A pixel LM rebuilt from its run folder."""

    model: PixelLM
    """The model that writes pixels (a DualGPT run's pixel path)."""
    pixel_config: PixelLMConfig
    vocab: Vocab
    renderer: LineRenderer


def load_pixel_run(run_dir: str | Path, checkpoint: str = "best") -> LoadedPixelRun:
    """A next-patch, pixar or dual run's pixel LM (eval mode), its settings, vocabulary and line renderer."""
    from ..training.run_folder import open_run

    folder = open_run(run_dir)
    pixel_objectives = [name for name, kind in _objectives().items() if kind.writes == "pixels"]
    folder.require(pixel_objectives, f"; this reads pixel LM runs (--objective {', '.join(pixel_objectives)})")
    model = folder.load_model(checkpoint)  # a PIXAR stage-2 checkpoint holds its discriminator too
    pixel_lm = model.pixel if isinstance(model, DualLM) else model
    pixel_config, run_dir = pixel_lm.config, folder.path
    renderer = LineRenderer(pixel_config.line)
    fonts = [f.get("sha256") for f in read_json(run_dir / "render.json", "render settings").get("fonts", [])]
    if fonts and fonts[0] != renderer.settings()["fonts"][0]["sha256"]:
        print(f"warning: the primary font differs from the one run {run_dir} was trained with", file=sys.stderr)
    return LoadedPixelRun(pixel_lm.eval(), pixel_config, Vocab.load(run_dir / "vocab.json"), renderer)


def prompt_patches(renderer: LineRenderer, prompt: str) -> torch.Tensor:
    """(1, n, P, P[, C]) the prompt drawn as the run draws its lines, without the end patch; n = 0 for
    an empty prompt. A character no font draws, or a prompt that fills the line, is an error."""
    if not prompt:
        shape = renderer.render_batch(["0"]).patches.shape
        return torch.zeros(1, 0, *shape[2:])
    if "\n" in prompt or "\r" in prompt:
        raise HotStartError("--prompt has a line break; a pixel LM continues one line: pass the prompt as one line")
    drawn = renderer.render_batch([prompt])
    if drawn.missing:
        raise HotStartError(f"--prompt has character(s) no font of the run's chain draws ({describe_chars(sorted(drawn.missing))}); "
                            "leave them out of the prompt")
    if drawn.truncated[0] or drawn.lengths[0] >= renderer.cfg.max_patches:
        raise HotStartError(f"--prompt fills the run's line of {renderer.cfg.max_patches} patches, leaving nothing to "
                            "generate; shorten the prompt")
    return torch.from_numpy(drawn.patches[:, : drawn.lengths[0] - 1])


def generate_line(run: LoadedPixelRun, prompt: str, max_new: int) -> tuple[torch.Tensor, int]:
    """The prompt's patches and at least `max_new` generated after them (whole positions of L patches,
    up to the end of the decoder's context), and how many patches the prompt took."""
    if max_new < 1:
        raise HotStartError(f"--max-new must be at least 1 patch, got {max_new}")
    start = prompt_patches(run.renderer, prompt)
    patch_len = run.pixel_config.patch_len
    grown = run.model.generate(start, math.ceil((max_new + start.shape[1] % patch_len) / patch_len))[0]
    return grown[: start.shape[1] + max_new], start.shape[1]


def read_generation(reader: GlyphReader | OcrReader, grown: torch.Tensor, prompt_len: int, prompt: str) -> dict[str, Any]:
    """What a generation reads back as after its prompt: its text, readability and agreement with the
    prompt's script (analysis/readback.py: nearest glyphs for char cells, OCR for running text)."""
    return reader.read_line(grown[prompt_len:], prompt, prompt_len)


def reference_line(renderer: LineRenderer, prompt: str, continuation: str, new_patches: int) -> tuple[torch.Tensor, int]:
    """The prompt followed by its real continuation, drawn as the run draws its lines, cut like a
    generation of `new_patches` patches, and how many patches the prompt takes: what a perfect
    generation would look like, read back by the same measure."""
    prompt_len = prompt_patches(renderer, prompt).shape[1]
    drawn = renderer.render_batch([prompt + continuation])
    return torch.from_numpy(drawn.patches[0, : min(drawn.lengths[0], prompt_len + new_patches)]), prompt_len


def continuation_image(grown: torch.Tensor, prompt_len: int, title: str, zoom: int = 2) -> Image.Image:
    """The prompt and its continuation as one strip, scaled by `zoom`, with a mark where generation
    starts and a title above."""
    strip = line_image(grown.float().numpy()).convert("L")
    strip = strip.resize((strip.width * zoom, strip.height * zoom), Image.NEAREST)
    pad, top = 8, 22
    image = Image.new("L", (max(strip.width + 2 * pad, 420), strip.height + top + pad + 4), 255)
    draw = ImageDraw.Draw(image)
    draw.text((pad, 5), title, fill=0)
    image.paste(strip, (pad, top))
    x = pad + prompt_len * grown.shape[1] * zoom
    draw.line([(x, top - 3), (x, top + strip.height + 3)], fill=0)
    return image


def generation_readback(run_dir: str | Path, prompts: list[str], new_patches: int, checkpoint: str = "last",
                        shown: int = 4, continuations: list[str] | None = None) -> tuple[dict[str, Any], Image.Image]:
    """Continue each prompt greedily by `new_patches` patches and read the continuations back: mean
    readability and agreement with the prompt's script over the prompts, each prompt's text read back,
    and an image of the first `shown` continuations. Given each prompt's real `continuations`, the same
    measures of those, drawn and cut alike, stand beside them (`reference_*`)."""
    run = load_pixel_run(run_dir, checkpoint)
    reader = line_reader(run.pixel_config.line, run.vocab)
    reads, references, images = [], [], []
    for i, prompt in enumerate(prompts):
        grown, prompt_len = generate_line(run, prompt, new_patches)
        reads.append({"prompt": prompt, **read_generation(reader, grown, prompt_len, prompt)})
        if continuations is not None:
            drawn, drawn_prompt_len = reference_line(run.renderer, prompt, continuations[i], new_patches)
            references.append(read_generation(reader, drawn, drawn_prompt_len, prompt))
        if len(images) < shown:
            images.append(continuation_image(grown, prompt_len, f"{Path(run_dir).name}: prompt | greedy continuation"))

    def mean(rows: list[dict[str, Any]], key: str) -> float:  # over the prompts where it is defined (no read character: no script)
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return sum(values) / len(values) if values else math.nan

    summary = {"checkpoint": checkpoint, "prompts": len(reads), "new_patches": new_patches,
               "reader": "glyph" if isinstance(reader, GlyphReader) else "ocr",
               "readability": mean(reads, "readability"), "language_agreement": mean(reads, "language_agreement")}
    if references:
        summary.update(reference_readability=mean(references, "readability"),
                       reference_language_agreement=mean(references, "language_agreement"))
    summary["generations"] = reads
    if references:
        summary["references"] = references
    sheet = Image.new("L", (max(i.width for i in images), sum(i.height for i in images)), 255) if images else Image.new("L", (1, 1), 255)
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    return summary, sheet


@torch.no_grad()
def generate(model: HotStartLM, vocab: Vocab, prompt: str, max_new: int = 100, temperature: float = 1.0,
             top_k: int | None = None, seed: int | None = None) -> Iterator[str]:
    """Yield one character at a time, sampled from the model after `prompt` (greedy at temperature 0)."""
    if temperature < 0 or (top_k is not None and top_k < 1):
        raise HotStartError("--temperature must be >= 0 and --top-k >= 1")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    model.eval()
    ids = torch.as_tensor(vocab.encode(prompt), dtype=torch.long).reshape(1, -1)
    if ids.shape[1] == 0:
        ids = torch.tensor([[SEP_ID]])  # an empty prompt starts a new document
    window = model.config.decoder.n_positions
    for _ in range(max_new):
        logits, _ = model(ids[:, -window:])
        logits = logits[0, -1].float()
        logits[PAD_ID] = -float("inf")  # never emit padding
        if temperature == 0:
            next_id = int(logits.argmax())
        else:
            if top_k is not None:
                cutoff = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                logits[logits < cutoff] = -float("inf")
            probs = torch.softmax(logits / temperature, dim=-1)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
        yield vocab.decode([next_id])


def stream(pieces: Iterator[str]) -> str:
    """Print pieces as they come (flushing) and return the whole text."""
    text = []
    for piece in pieces:
        print(piece, end="", flush=True)
        text.append(piece)
    print()
    sys.stdout.flush()
    return "".join(text)
