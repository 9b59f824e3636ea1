"""Text to pixels, shared by every model family: the font files (fonts.py), one thumbnail per
character (glyph.py, HotStart's input)."""
