"""Thumbnails for the email: a pick's lead image, resized to a small JPEG or PNG (Pillow).

Mail clients do not show SVG, and an image hot-linked from the source blog breaks when
the blog moves or is down (see #20), so ``mash build`` downloads each pick's image once,
and this module turns the bytes into a thumbnail stored under output/site/images/.
An SVG is rasterised with CairoSVG, which fetches nothing (``unsafe=False`` reads only
data: URLs). Pure: bytes in, bytes out; the download and the file are the pipeline's.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from mash.errors import ExtractError

# What the email shows: 96 CSS pixels wide at most, and no taller than wide. The file
# has twice the pixels, so it stays sharp on high-density screens.
DISPLAY_WIDTH = 96
DISPLAY_HEIGHT = 96
DENSITY = 2
FOLDER = "images"  # under output/site/
EXTENSIONS = (".jpg", ".png")
_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
_MAX_PIXELS = 40_000_000  # a lead image larger than this is refused, not decoded


@dataclass(frozen=True)
class Made:
    """A thumbnail made by ``make_thumbnail``: the file's bytes, extension and pixel size."""

    content: bytes
    extension: str
    width: int
    height: int


def thumbnail_stem(image_url: str) -> str:
    """Return "images/<hash>" for an image URL: the same on every run, so re-runs reuse it."""
    digest = hashlib.sha256(image_url.strip().encode("utf-8")).hexdigest()[:20]
    return f"{FOLDER}/{digest}"


def display_size(width: int, height: int) -> tuple[int, int]:
    """Return the CSS size a thumbnail file of width x height pixels is shown at."""
    return max(1, round(width / DENSITY)), max(1, round(height / DENSITY))


def make_thumbnail(content: bytes, image_url: str) -> Made:
    """Return content (JPEG, PNG, GIF, WebP or SVG) as a thumbnail; raise ExtractError if not.

    A PNG when the image has transparency or was an SVG, else a JPEG. The aspect ratio
    is kept; an image smaller than the box is not enlarged.
    """
    drawing = _is_svg(content)  # sharp edges and flat colours: PNG keeps them crisp
    image = _rasterise(content, image_url) if drawing else _decode(content, image_url)
    image = ImageOps.exif_transpose(image)
    image.thumbnail((DISPLAY_WIDTH * DENSITY, DISPLAY_HEIGHT * DENSITY), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if drawing or _has_alpha(image):
        image.convert("RGBA").save(out, "PNG", optimize=True)
        extension = ".png"
    else:
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True, progressive=True)
        extension = ".jpg"
    return Made(out.getvalue(), extension, image.width, image.height)


def read_size(content: bytes) -> tuple[int, int] | None:
    """Return the pixel size of a stored thumbnail, or None if it is not a JPEG or PNG."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size if image.format in ("JPEG", "PNG") else None
    except (UnidentifiedImageError, OSError):
        return None


def _is_svg(content: bytes) -> bool:
    head = content[:1024].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


def _rasterise(content: bytes, image_url: str) -> Image.Image:
    try:  # imported here: it loads libcairo, which only this step needs
        import cairosvg
    except OSError as e:  # no libcairo2 on the machine: SVGs are left out, with this reason
        raise ExtractError(image_url, "an SVG needs libcairo2 (apt-get install libcairo2)") from e
    try:
        png = cairosvg.svg2png(
            bytestring=_HSL.sub(_rgb, content), output_width=DISPLAY_WIDTH * DENSITY
        )
    except Exception as e:  # CairoSVG raises many kinds on a bad file; all mean "not usable"
        raise ExtractError(image_url, f"cannot rasterise the SVG: {e}") from e
    return _decode(png, image_url)


# CairoSVG 2.x paints hsl() colours black; rgb() means the same and it knows that.
_HSL = re.compile(
    rb"hsla?\(\s*(-?[\d.]+)(?:deg)?[\s,]+([\d.]+)%[\s,]+([\d.]+)%\s*(?:[,/]\s*([\d.]+%?)\s*)?\)"
)


def _rgb(match: re.Match[bytes]) -> bytes:
    hue, saturation, lightness = (float(match.group(i)) for i in (1, 2, 3))
    red, green, blue = colorsys.hls_to_rgb((hue % 360) / 360, lightness / 100, saturation / 100)
    rgb = ", ".join(str(round(c * 255)) for c in (red, green, blue))
    alpha = match.group(4)
    if alpha is None:
        return f"rgb({rgb})".encode()
    opacity = float(alpha[:-1]) / 100 if alpha.endswith(b"%") else float(alpha)
    return f"rgba({rgb}, {opacity:g})".encode()


def _decode(content: bytes, image_url: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
            if image.format not in _FORMATS:
                raise ExtractError(image_url, f"not a JPEG, PNG, GIF, WebP or SVG: {image.format}")
            if image.width * image.height > _MAX_PIXELS:
                raise ExtractError(image_url, f"too large: {image.width} x {image.height} pixels")
            image.draft("RGB", (DISPLAY_WIDTH * DENSITY, DISPLAY_HEIGHT * DENSITY))
            image.load()
    except (
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as e:
        raise ExtractError(image_url, f"not an image: {e}") from e
    return image


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA"):
        low, _ = image.getchannel("A").getextrema()
        return isinstance(low, int) and low < 255
    return image.mode == "P" and "transparency" in image.info
