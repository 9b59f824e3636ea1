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

__version__ = "0.5.0"

# The public API is imported on first use (PEP 562), not with the package: `hotstart --help` and
# `--version` then start in well under a second instead of loading torch and transformers first.
_API = {
    "hotstart.data.prepared": ("PrepareConfig", "PreparedCorpus", "Vocab", "curriculum_size", "prepare"),
    "hotstart.errors": ("HotStartError",),
    "hotstart.use.export": ("export_run", "to_transformers"),
    "hotstart.use.generate": ("generate",),
    "hotstart.models.decoder": ("DECODER_SIZES", "DecoderConfig", "decoder_size"),
    "hotstart.models.encoders": ("EncoderConfig", "GlyphEncoder"),
    "hotstart.models.hotstart_lm": ("HotStartLM", "InputConfig", "ModelConfig"),
    "hotstart.render.glyph": ("GlyphBank", "GlyphRenderer", "RenderConfig", "render_grid"),
    "hotstart.training.evaluate": ("evaluate", "evaluate_run"),
    "hotstart.training.config": ("TrainConfig",),
    "hotstart.training.loop": ("train",),
    "hotstart.training.run": ("RunConfig", "build_model", "load_run"),
}
_HOME = {name: module for module, names in _API.items() for name in names}
__all__ = [  # the names of _API, as a literal list for tools that read it without running the module
    "DECODER_SIZES", "DecoderConfig", "EncoderConfig", "GlyphBank", "GlyphEncoder", "GlyphRenderer",
    "HotStartError", "HotStartLM", "InputConfig", "ModelConfig", "PrepareConfig", "PreparedCorpus",
    "RenderConfig", "RunConfig", "TrainConfig", "Vocab", "build_model", "curriculum_size", "decoder_size",
    "evaluate", "evaluate_run", "export_run", "generate", "load_run", "prepare", "render_grid", "to_transformers", "train",
]


def __getattr__(name: str) -> object:
    """The public API's `name`, imported from its module the first time it is asked for."""
    if name not in _HOME:
        raise AttributeError(f"module 'hotstart' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
