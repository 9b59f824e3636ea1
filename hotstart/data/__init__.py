"""Text corpora: the built-in and user corpora (corpus.py), and the prepared form every run reads:
vocabulary, token stream, splits and sample order (prepared.py)."""
