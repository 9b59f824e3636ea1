"""Checkpoint and run-folder file I/O: side files, atomic safetensors writes, one-line load errors, and the
training state's round trip."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from hotstart.errors import HotStartError
from hotstart.training import checkpoint
from hotstart.training.checkpoint import (
    load_training_state,
    load_weights,
    read_json,
    save_training_state,
    save_weights,
    write_json,
)


def test_json_side_files_are_indented_and_keep_chinese_readable(tmp_path: Path) -> None:
    write_json(tmp_path / "render.json", {"font_name": "文泉驿", "res": 24})
    assert (tmp_path / "render.json").read_text(encoding="utf-8") == '{\n  "font_name": "文泉驿",\n  "res": 24\n}\n'
    assert read_json(tmp_path / "render.json", "render settings") == {"font_name": "文泉驿", "res": 24}


def test_a_missing_json_file_is_named_with_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(HotStartError, match=rf"^run summary {tmp_path / 'summary.json'} does not exist$"):
        read_json(tmp_path / "summary.json", "run summary")


def test_weights_go_through_a_temporary_file_beside_them_not_the_system_temp_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the rename that makes the write atomic only works within one file system, so the temporary file
    # must sit beside the checkpoint: with the system temp folder gone, saving must still work
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    (tmp_path / "checkpoints").mkdir()
    save_weights(torch.nn.Linear(3, 2), tmp_path / "checkpoints" / "best.safetensors")
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["best.safetensors"]


@pytest.mark.parametrize(("change", "detail"), [
    (lambda s: {**s, "extra.weight": torch.zeros(1)}, "(unexpected: extra.weight)"),
    (lambda s: {"weight": s["weight"], "extra.weight": torch.zeros(1)}, "(missing: bias; unexpected: extra.weight)"),
    (lambda s: {**s, "bias": torch.zeros(5)}, "(wrong shape: bias)"),
], ids=["unexpected", "missing-and-unexpected", "wrong-shape"])
def test_a_checkpoint_of_another_model_is_refused_naming_the_keys_that_differ(change, detail: str, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = torch.nn.Linear(3, 2)
    save_file(change(dict(model.state_dict())), tmp_path / "w.safetensors")
    with pytest.raises(HotStartError) as err:
        load_weights(model, tmp_path / "w.safetensors")
    assert str(err.value) == f"checkpoint {tmp_path / 'w.safetensors'} does not match this run's model {detail}"


def test_a_load_error_without_a_message_is_named_by_its_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_weights(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")

    def fails_silently(path: str) -> dict:
        raise OSError

    monkeypatch.setattr(checkpoint, "load_file", fails_silently)  # isolates the message, not the reader
    with pytest.raises(HotStartError, match=r"is corrupt or truncated \(OSError\)"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")


def test_a_training_state_restores_the_optimizer_moments(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).square().sum().backward()
    optimizer.step()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    save_training_state(tmp_path / "state.safetensors", model, optimizer, scaler, {"step": 1})

    fresh_model = torch.nn.Linear(3, 2)
    fresh = torch.optim.AdamW(fresh_model.parameters(), lr=0.1)
    assert load_training_state(tmp_path / "state.safetensors", fresh_model, fresh, scaler) == {"step": 1}
    restored = fresh.state_dict()["state"]
    assert restored.keys() == optimizer.state_dict()["state"].keys() == {0, 1}
    for index, moments in optimizer.state_dict()["state"].items():
        assert moments.keys() == restored[index].keys()
        assert all(torch.equal(value, restored[index][name]) for name, value in moments.items())
