"""Text to pixels, shared by every model family: the font files (fonts.py), one thumbnail per
character (glyph.py, HotStart's input), and a line of text cut into patches (line.py, the input of
PIXEL-M4, PixelGPT and PIXAR)."""
