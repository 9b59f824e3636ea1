"""Using a trained run: export it to plain `transformers` folders (`export.py`) and generate from it, characters
or pixels read back (`generate.py`). Fine-tuning on a task is in tasks/."""
