"""HotStart: pixel language modelling.

GPT-2 character language models that read each Chinese character as a tiny rendered picture
(visual-in, token-out), next to the same decoder reading character IDs (the index baseline).
The public API, in the order of a pipeline::

    from hotstart import PrepareConfig, prepare, RunConfig, ModelConfig, InputConfig, TrainConfig, train
    corpus = prepare(PrepareConfig(corpus="inews"), "data/inews")
    cfg = RunConfig(data="data/inews", model=ModelConfig(vocab_size=len(corpus.vocab),
                    input=InputConfig(kind="vision")), train=TrainConfig(max_samples=8192))
    summary = train(cfg, "runs/vision")
    print(evaluate_run("runs/vision"))
"""

__version__ = "0.3.0"

from .data.prepared import (
    PrepareConfig,
    PreparedCorpus,
    Vocab,
    curriculum_size,
    prepare,
)
from .errors import HotStartError
from .export import export_run, generate, to_transformers
from .models.decoder import DECODER_SIZES, DecoderConfig, decoder_size
from .models.encoders import EncoderConfig, GlyphEncoder
from .models.hotstart_lm import HotStartLM, InputConfig, ModelConfig
from .render.glyph import GlyphBank, GlyphRenderer, RenderConfig, render_grid
from .training.evaluate import evaluate, evaluate_run
from .training.loop import train
from .training.run import RunConfig, TrainConfig, build_model, load_run

__all__ = [
    "DECODER_SIZES", "DecoderConfig", "EncoderConfig", "GlyphBank", "GlyphEncoder", "GlyphRenderer",
    "HotStartError", "HotStartLM", "InputConfig", "ModelConfig", "PrepareConfig", "PreparedCorpus",
    "RenderConfig", "RunConfig", "TrainConfig", "Vocab", "build_model", "curriculum_size", "decoder_size",
    "evaluate", "evaluate_run", "export_run", "generate", "load_run", "prepare", "render_grid", "to_transformers", "train",
]
