"""Font files: checking that a file is a usable font, naming and hashing a face, sizing it for drawing.

A model records the font it was trained with (path, face, full name, sha256 of the file), so a glyph
bank drawn later from a different file under the same name is noticed. Reading a CJK font's tables
takes about 0.1 s, so each face's data is read once per process and keyed by the file's size and
modification time.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageFont

from ..errors import HotStartError

_MAX_EXAMPLES = 10  # characters named in a message about missing glyphs
_SFNT_TAGS = (b"\x00\x01\x00\x00", b"OTTO", b"true")  # TrueType, CFF OpenType, Apple TrueType


@dataclass
class FontInfo:
    """The identity of one font face, as recorded beside a model."""

    path: str  # absolute path of the font file
    face: int  # face index inside the file (0 for a single-font file)
    name: str  # full name from the font's name table, e.g. "Noto Sans CJK SC"
    sha256: str  # hash of the whole file, so a different file under the same name is noticed


@dataclass(frozen=True)
class _FaceData:
    name: str
    cmap: frozenset[int]  # code points the face maps to a glyph
    ascender: int  # em box top and bottom in font units (OS/2 typo metrics)
    descender: int
    units_per_em: int


def _file_sig(path: str) -> tuple[str, int, int]:
    """(absolute path, size, mtime) of a font file: the key of every per-file cache."""
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


def _face_count(path: str) -> int:
    """Faces in a font file, from its header; HotStartError if the file is missing or not a font."""
    if os.path.isdir(path):
        raise HotStartError(f"font {path} is a folder, not a font file; pass a TTF/OTF/TTC file inside it")
    if not os.path.isfile(path):
        raise HotStartError(f"font file {path} does not exist; pass an existing TTF/OTF/TTC file")
    with open(path, "rb") as fh:
        header = fh.read(12)
    if header[:4] == b"ttcf" and len(header) == 12:
        return struct.unpack(">L", header[8:12])[0]  # numFonts of the TTC header
    if header[:4] in _SFNT_TAGS:
        return 1
    raise HotStartError(f"font file {path} is not a TrueType/OpenType font (.ttf, .otf or .ttc)")


@functools.cache
def _face_data(path: str, size: int, mtime_ns: int, face: int) -> _FaceData:
    """Name, coverage and em box of one face (loading a CJK cmap takes ~0.1 s, so once per process)."""
    try:
        with TTFont(path, fontNumber=face, lazy=True) as tt:
            names = tt["name"]
            name = names.getDebugName(4) or names.getDebugName(1) or Path(path).stem
            cmap = frozenset(tt.getBestCmap() or ())
            upm = tt["head"].unitsPerEm
            asc, desc = _em_box(tt, upm)
    except Exception as exc:  # noqa: BLE001 - fontTools raises many types on damaged files; all mean "not usable"
        raise HotStartError(f"font file {path} (face {face}) cannot be read: {exc}".splitlines()[0]) from None
    return _FaceData(name, cmap, asc, desc, upm)


def _em_box(tt: TTFont, upm: int) -> tuple[int, int]:
    """(ascender, descender) in font units; for CJK fonts the ideographic em box (880, -120)."""
    if "OS/2" in tt and tt["OS/2"].sTypoAscender - tt["OS/2"].sTypoDescender > 0:
        return tt["OS/2"].sTypoAscender, tt["OS/2"].sTypoDescender
    if "hhea" in tt and tt["hhea"].ascent - tt["hhea"].descent > 0:
        return tt["hhea"].ascent, tt["hhea"].descent
    return upm, 0


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checked_face(path: str, face: int) -> _FaceData:
    """The face's data after checking that the file is a font and the index is in range."""
    count = _face_count(path)
    if not 0 <= face < count:
        raise HotStartError(
            f"font file {path} has {count} face(s), so face {face} does not exist; use a face from 0 to {count - 1}"
        )
    return _face_data(*_file_sig(path), face)


def font_info(path: str, face: int) -> FontInfo:
    """Identity (absolute path, face, full name, file sha256) of a font face; checks the file."""
    data = _checked_face(str(path), face)
    sig = _file_sig(str(path))
    return FontInfo(path=sig[0], face=face, name=data.name, sha256=_file_sha256(*sig))


@functools.cache
def default_font() -> tuple[str, int]:
    """(path, face) of Noto Sans CJK SC in the noto-cjk-sans-otc package, the face found by name."""
    try:
        import noto_cjk_sans_otc
    except ImportError:
        raise HotStartError(
            "the default font package is not installed; pip install noto-cjk-sans-otc or pass --font PATH"
        ) from None
    path = str(noto_cjk_sans_otc.FONT_PATH)
    face = face_named(path, "Noto Sans CJK SC")
    if face is None:
        raise HotStartError(f"font file {path} has no Noto Sans CJK SC face; reinstall noto-cjk-sans-otc")
    return path, face


def face_named(path: str, name: str) -> int | None:
    """The index of the first face of font file `path` whose full or family name contains `name`
    (monospaced variants aside), or None."""
    for face in range(_face_count(path)):
        # the name table is tiny; the cmap of faces we skip is never loaded
        with TTFont(path, fontNumber=face, lazy=True) as tt:
            names = [tt["name"].getDebugName(i) or "" for i in (4, 1)]
        if any(name in n and "Mono" not in n for n in names):
            return face
    return None


def parse_font_spec(spec: str) -> tuple[str, int]:
    """"path" or "path#face" -> (path, face); a '#' not followed by digits is part of the path."""
    path, sep, face = spec.rpartition("#")
    if sep and face.isdigit():
        return path, int(face)
    return spec, 0


@functools.cache
def _pil_font(path: str, file_size: int, mtime_ns: int, face: int, size: float,
              shaped: bool = False) -> ImageFont.FreeTypeFont:
    """A sized FreeType font, shared by every renderer that needs it. Keyed by the file's size and
    mtime like the other caches: FreeType reads glyphs from the file lazily, so a font kept from
    before its file was overwritten would draw the old glyphs, or crash on the new bytes.

    `shaped` asks for Pillow's raqm layout (HarfBuzz shaping, FriBiDi reordering) for running text
    in complex scripts; one character needs no shaping, and BASIC layout is faster."""
    layout = ImageFont.Layout.RAQM if shaped else ImageFont.Layout.BASIC
    try:
        return ImageFont.truetype(path, size, index=face, layout_engine=layout)
    except OSError as exc:
        raise HotStartError(f"FreeType cannot use font {path} (face {face}) at {size:g} px: {exc}") from None


@dataclass(frozen=True)
class Face:
    """One font face ready to draw into the supersampled canvas."""

    info: FontInfo
    cmap: frozenset[int]
    pil: ImageFont.FreeTypeFont
    ascender_px: float  # distance from the top of the em box down to the baseline, canvas px


def load_face(path: str, face: int, em_px: float, shaped: bool = False, em_box: bool = True) -> Face:
    """Size the face so that its em box (typo ascender - descender) is exactly em_px tall, or, with
    `em_box` False, so that its units-per-em square is (a font size of em_px, as text is set: fonts
    whose em box is much taller than that square, as many Devanagari fonts', keep their usual size)."""
    info = font_info(path, face)
    data = _checked_face(path, face)
    size = em_px * data.units_per_em / (data.ascender - data.descender) if em_box else em_px
    pil = _pil_font(*_file_sig(info.path), face, size, shaped)
    return Face(info, data.cmap, pil, data.ascender * size / data.units_per_em)


def script_fonts() -> list[str]:
    """Installed fonts for the characters the default font lacks, as "path" specs, in the order they
    are tried: DejaVu Sans, which matplotlib ships (the Cyrillic letters Noto Sans CJK SC lacks, such as
    Ukrainian і ї є ґ, and Hebrew, Arabic, Greek, Armenian, Georgian), then a Devanagari font where one
    is installed (`pip install devanagari-fonts` bundles Shobhika; Debian's fonts-noto-core has Noto
    Sans Devanagari). DejaVu comes first so that Cyrillic never falls to a Devanagari font's own."""
    import matplotlib

    found = []
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if dejavu.is_file():
        found.append(str(dejavu))
    try:
        from importlib.resources import files

        bundled = sorted(Path(str(files("devanagari_fonts") / "fonts")).glob("*/*-Regular.*tf"))
        found += [str(p) for p in bundled[:1]]
    except (ImportError, OSError):
        pass
    debian = Path("/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf")
    if debian.is_file():
        found.append(str(debian))
    return found


def describe_chars(chars: Sequence[str]) -> str:
    """Up to 10 characters as "U+0531 'Ա'" (the glyph only where it is printable), then how many more."""
    shown = [f"U+{ord(c):04X} {c!r}" if c.isprintable() else f"U+{ord(c):04X}" for c in chars[:_MAX_EXAMPLES]]
    more = f" and {len(chars) - _MAX_EXAMPLES} more" if len(chars) > _MAX_EXAMPLES else ""
    return ", ".join(shown) + more
