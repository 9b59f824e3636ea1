"""One training loop for every model (loop.py), what a run is and how it is rebuilt (run.py),
evaluation, checkpoints, precision and torchrun support."""
