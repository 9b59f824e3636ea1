"""Reading models and what they write: pixels read back as characters (`readback.py`: the glyph reader and OCR,
used by the pixel objectives' evaluation, by generation and by the compression grid), and which pixels of a
glyph a vision LM reads (`attribution.py`)."""
