"""Thumbnails (mash.images) and how `mash build` stores and links them (see #20)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from PIL import Image

from mash.cli import main as mash
from mash.errors import ExtractError
from mash.images import DENSITY, display_size, make_thumbnail, read_size, thumbnail_stem

SVG_WITH_HSL = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" viewBox="0 0 320 160">'
    b'<rect width="320" height="160" fill="hsl(329,40%,95%)"/>'
    b'<rect x="20" y="20" width="100" height="120" fill="hsl(210, 60%, 40%)"/></svg>'
)


def picture(size: tuple[int, int], mode: str = "RGB", kind: str = "JPEG") -> bytes:
    out = io.BytesIO()
    colour = (200, 80, 40, 128) if mode == "RGBA" else (200, 80, 40)
    Image.new(mode, size, colour).save(out, kind)
    return out.getvalue()


def opened(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


@pytest.mark.parametrize(
    ("size", "expected"),
    [((800, 600), (192, 144)), ((600, 1200), (96, 192)), ((100, 50), (100, 50))],
    ids=["landscape", "portrait", "small-not-enlarged"],
)
def test_photo_becomes_a_jpeg_that_keeps_its_aspect(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    made = make_thumbnail(picture(size), "https://blog.example/lead.jpg")
    assert made.extension == ".jpg"
    assert (made.width, made.height) == expected
    image = opened(made.content)
    assert image.format == "JPEG" and image.size == expected


def test_transparent_png_stays_png() -> None:
    made = make_thumbnail(picture((400, 400), "RGBA", "PNG"), "https://blog.example/a.png")
    assert made.extension == ".png" and opened(made.content).format == "PNG"
    assert (made.width, made.height) == (192, 192)


def needs_cairo() -> None:
    try:
        import cairosvg  # noqa: F401
    except OSError:
        pytest.skip("libcairo2 is absent (Debian: apt-get install libcairo2)")


def test_svg_is_rasterised_with_its_colours() -> None:
    """CairoSVG paints hsl() black; the thumbnail has the drawing's colours."""
    needs_cairo()
    made = make_thumbnail(SVG_WITH_HSL, "https://blog.example/chart.svg")
    assert made.extension == ".png" and opened(made.content).format == "PNG"
    image = opened(made.content).convert("RGB")
    assert image.size == (192, 96)
    background = image.getpixel((2, 2))
    bar = image.getpixel((30, 40))
    assert background == pytest.approx((247, 237, 242), abs=2)
    assert bar == pytest.approx((41, 102, 163), abs=2)


@pytest.mark.parametrize(
    "content",
    [b"<html>not an image</html>", b"", b'<svg xmlns="http://www.w3.org/2000/svg"><rect'],
    ids=["html", "empty", "broken-svg"],
)
def test_what_is_not_an_image_is_an_error_naming_the_url(content: bytes) -> None:
    with pytest.raises(ExtractError) as caught:
        make_thumbnail(content, "https://blog.example/x")
    assert "https://blog.example/x" in str(caught.value)


def test_names_are_deterministic_and_sizes_halve() -> None:
    assert thumbnail_stem("https://a.example/x.svg") == thumbnail_stem("https://a.example/x.svg")
    assert thumbnail_stem("https://a.example/x.svg") != thumbnail_stem("https://a.example/y.svg")
    assert re.fullmatch(r"images/[0-9a-f]{20}", thumbnail_stem("https://a.example/x.svg"))
    assert display_size(192, 97) == (96, 48)
    assert read_size(picture((30, 20))) == (30, 20)
    assert read_size(b"GIF89a nothing") is None


# --- mash build + mash site on the demo blogs -------------------------------------------


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.found.append(dict(attrs))


def images_of(html: str) -> list[dict[str, str | None]]:
    parser = _Images()
    parser.feed(html)
    return parser.found


def feed_hosts(config: Path) -> set[str]:
    feeds = yaml.safe_load(config.read_text(encoding="utf-8"))["feeds"]
    return {urlsplit(f["url"]).netloc for f in feeds}


def test_email_images_are_thumbnails_on_the_site(workspace: Path) -> None:
    needs_cairo()  # the demo's lead images are SVGs
    config = yaml.safe_load(workspace.read_text(encoding="utf-8"))
    site_url = config["newsletter"]["site_url"]
    assert mash(["--config", str(workspace), "build", "--month", "2026-10"]) == 0
    assert mash(["--config", str(workspace), "site"]) == 0
    html = (workspace.parent / "2026-10" / "email.html").read_text(encoding="utf-8")
    found = images_of(html)
    assert found, "the demo's October picks have a lead image (an SVG)"
    hosts = feed_hosts(workspace)
    site = workspace.parent / "site"
    for attrs in found:
        src = attrs["src"] or ""
        assert not src.lower().endswith(".svg") and urlsplit(src).netloc not in hosts, src
        assert src.startswith(site_url), src
        assert attrs.get("alt")
        width, height = int(attrs["width"] or 0), int(attrs["height"] or 0)
        stored = site / src[len(site_url) :]
        image = opened(stored.read_bytes())
        assert image.format in ("JPEG", "PNG")
        # the file has DENSITY times the pixels it is shown at, in the same proportions
        assert abs(image.width - DENSITY * width) <= 1 and abs(image.height - DENSITY * height) <= 1


def test_a_rebuild_reuses_the_stored_thumbnails(workspace: Path) -> None:
    needs_cairo()
    assert mash(["--config", str(workspace), "build", "--month", "2026-10"]) == 0
    stored = {p: p.stat().st_ino for p in (workspace.parent / "site" / "images").iterdir()}
    assert stored
    html = (workspace.parent / "2026-10" / "email.html").read_text(encoding="utf-8")
    assert mash(["--config", str(workspace), "build", "--month", "2026-10"]) == 0
    assert {p: p.stat().st_ino for p in stored} == stored  # not written again
    assert (workspace.parent / "2026-10" / "email.html").read_text(encoding="utf-8") == html


def test_no_site_url_no_thumbnails(workspace: Path) -> None:
    config = yaml.safe_load(workspace.read_text(encoding="utf-8"))
    config["newsletter"]["site_url"] = ""
    workspace.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert mash(["--config", str(workspace), "build", "--month", "2026-10"]) == 0
    html = (workspace.parent / "2026-10" / "email.html").read_text(encoding="utf-8")
    assert images_of(html) == []
    assert not (workspace.parent / "site" / "images").exists()
