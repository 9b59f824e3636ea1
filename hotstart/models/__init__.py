"""The model families, one module each, with the pieces only they use: HotStart's character LM
(hotstart_lm.py) and its glyph encoders (encoders.py), the chunked output loss (fused_loss.py), and
statistics of a model's input vectors (embedding_stats.py); PIXEL-M4's pixel masked autoencoder
(mae.py) and its index baseline, a character BERT (char_bert.py)."""
