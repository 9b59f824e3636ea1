"""Checkpoint and run-folder file I/O: safetensors weights, JSON/YAML side files, atomic writes.

Weights are only ever stored as safetensors (no pickle), written to a temporary file and renamed
into place, so a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import HotStartError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, with a one-line error naming `what` it is if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise HotStartError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HotStartError(f"{what} {path} is corrupt ({exc.__class__.__name__}); recreate it") from None


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """The model's state dict as safetensors, atomically."""
    path = Path(path)
    _save_safetensors({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, path, metadata)


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None) -> None:
    """safetensors through a temporary file in the same folder and a rename: never half a file."""
    tensors = _unshared(tensors)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy for every tensor whose memory an earlier one holds (a tied head's weight is the input
    table's): safetensors refuses to write shared memory, and loading fills both names alike."""
    seen: set[int] = set()
    out = {}
    for name, tensor in tensors.items():
        storage = tensor.untyped_storage().data_ptr()
        out[name] = tensor.clone() if storage in seen else tensor
        seen.add(storage)
    return out


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights into `model`, refusing missing, corrupt or mismatched files in one line."""
    path = Path(path)
    if not path.is_file():
        raise HotStartError(f"checkpoint {path} does not exist")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise HotStartError(f"checkpoint {path} is corrupt or truncated ({msg}); use another checkpoint or retrain") from None
    _load_state_dict(model, state, path)


def _load_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load `state` into `model` after checking that keys and shapes match, in one line if not."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise HotStartError(f"checkpoint {path} does not match this run's model ({detail})")
    with torch.no_grad():
        model.load_state_dict(state)


def save_training_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        scaler: torch.amp.GradScaler, progress: dict[str, Any]) -> None:
    """Everything a killed run needs to continue exactly, in one safetensors file (atomically).

    Tensors: the weights, every optimizer state tensor and the RNG states. Header metadata (JSON):
    the optimizer's param groups, the gradient scaler and the loop's counters and metrics rows.
    """
    path = Path(path)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, values in opt["state"].items():
        for name, value in values.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().contiguous().cpu()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    metadata = {"format": "hotstart-training-state-1", "param_groups": json.dumps(opt["param_groups"]),
                "scaler": json.dumps(scaler.state_dict()), "progress": json.dumps(progress)}
    _save_safetensors(tensors, path, metadata)


def training_state_progress(path: Path) -> dict[str, Any]:
    """The loop's progress dict from a training state's header, without loading its tensors."""
    try:
        with safe_open(str(path), "pt") as f:
            return json.loads((f.metadata() or {})["progress"])
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise HotStartError(f"training state {path} is corrupt or truncated ({msg}); "
                            "resume is impossible: retrain with --overwrite") from None


def load_training_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        scaler: torch.amp.GradScaler) -> dict[str, Any]:
    """Restore what save_training_state wrote; returns the loop's progress dict."""
    path = Path(path)
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
        groups, scaler_state, progress = (json.loads(metadata[k]) for k in ("param_groups", "scaler", "progress"))
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise HotStartError(f"training state {path} is corrupt or truncated ({msg}); "
                            "resume is impossible: retrain with --overwrite") from None
    _load_state_dict(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    if scaler_state:
        scaler.load_state_dict(scaler_state)
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return progress
