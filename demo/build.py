"""Build the demo corpus: demo/posts + demo/blogs.yaml -> demo/site, demo/truth.json.

    python demo/build.py                    # writes demo/site/ and demo/truth.json
    python demo/build.py --corpus OUTDIR    # also OUTDIR/<id>/{source.html,expected.txt,url.txt}

Deterministic: the same input gives byte-identical output (no clock, no randomness,
sorted iteration). Every URL is written with the literal ``{{BASE}}`` in place of
scheme+host+port; the demo server substitutes it when serving.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import re
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import markdown
import yaml
from lxml import html as lxml_html

DEMO = Path(__file__).resolve().parent
BASE = "{{BASE}}"
MARKER_FILE = ".demo-site"


@dataclass
class Blog:
    """One blog of blogs.yaml."""

    slug: str
    name: str
    authors: list[str]
    tagline: str
    theme: str
    feed: str
    mode: str
    guid: str
    utm: bool
    house: bool
    lang: str
    marker: str = ""
    posts: list[Post] = field(default_factory=list)

    @property
    def home(self) -> str:
        return f"{BASE}/{self.slug}/"

    @property
    def feed_url(self) -> str:
        return f"{BASE}/{self.slug}/{'feed.xml' if self.feed == 'rss' else 'atom.xml'}"

    @property
    def feed_type(self) -> str:
        return "application/rss+xml" if self.feed == "rss" else "application/atom+xml"


@dataclass
class Post:
    """One post: front matter, body and everything derived from them."""

    blog: Blog
    slug: str
    title: str
    author: str
    date: datetime
    labels: dict[str, Any]
    body_md: str
    meta: dict[str, Any]
    number: int = 0
    body_html: str = ""
    summary: str = ""
    expected: str = ""
    comments: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{BASE}/{self.blog.slug}/{self.date:%Y/%m}/{self.slug}/"

    @property
    def month(self) -> str:
        return f"{self.date:%Y-%m}"

    @property
    def corpus_id(self) -> str:
        return f"{self.blog.slug}--{self.slug}"

    @property
    def canonical(self) -> str:
        return self.labels.get("duplicate_of_url") or self.url

    @property
    def image(self) -> str | None:
        m = re.search(r'<img[^>]+src="([^"]+)"', self.body_html)
        return m.group(1) if m else None

    @property
    def feed_link(self) -> str:
        if not self.blog.utm:
            return self.url
        return f"{self.url}?utm_source=rss&utm_medium=rss&utm_campaign={self.slug}"

    @property
    def guid(self) -> str:
        style = self.blog.guid
        if style == "query":
            return f"{BASE}/{self.blog.slug}/?p={self.number}"
        if style == "uuid":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, self.url))
        if style == "tag":
            blog_id = int(hashlib.sha1(self.blog.slug.encode()).hexdigest()[:12], 16)
            return f"tag:blogger.com,1999:blog-{blog_id}.post-{self.number}"
        return self.url

    @property
    def comments_feed(self) -> str:
        return f"{self.url}comments.xml"


# --- reading -----------------------------------------------------------------------


def _split_front_matter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise SystemExit(f"{path}:1: no YAML front matter")
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise SystemExit(f"{path}: front matter is not closed by '---'")
    meta = yaml.safe_load(head)
    if not isinstance(meta, dict):
        raise SystemExit(f"{path}:2: front matter is not a mapping")
    return meta, body.strip() + "\n"


def load_blogs(demo: Path) -> list[Blog]:
    """Read blogs.yaml and every blog's posts, newest first."""
    data = yaml.safe_load((demo / "blogs.yaml").read_text(encoding="utf-8"))
    blogs = [Blog(**entry) for entry in data["blogs"]]
    if sum(b.house for b in blogs) != 1:
        raise SystemExit(f"{demo / 'blogs.yaml'}: exactly one blog must have house: true")
    for blog in blogs:
        for path in sorted((demo / "posts" / blog.slug).glob("*.md")):
            blog.posts.append(_load_post(blog, path))
        blog.posts.sort(key=lambda p: p.date, reverse=True)
        for i, post in enumerate(sorted(blog.posts, key=lambda p: p.date)):
            post.number = 101 + 17 * i + len(blog.slug)
    return blogs


def _load_post(blog: Blog, path: Path) -> Post:
    meta, body = _split_front_matter(path)
    for key in ("title", "author", "date", "labels"):
        if key not in meta:
            raise SystemExit(f"{path}: front matter lacks {key!r}")
    date = meta["date"]
    if isinstance(date, str):
        date = datetime.fromisoformat(date)
    if not isinstance(date, datetime) or date.tzinfo is None:
        raise SystemExit(f"{path}: date must be ISO 8601 with a time zone offset")
    if isinstance(meta.get("updated"), str):
        meta["updated"] = datetime.fromisoformat(meta["updated"])
    return Post(
        blog=blog,
        slug=path.stem,
        title=meta["title"],
        author=meta["author"],
        date=date,
        labels=dict(meta["labels"]),
        body_md=body,
        meta=meta,
    )


# --- deriving ----------------------------------------------------------------------


def _md_to_html(text: str) -> str:
    return markdown.markdown(text, extensions=["extra"], output_format="html")


def _resolve_links(post: Post, body_html: str) -> str:
    """Make relative image paths absolute under the blog's folder."""
    return re.sub(r'src="images/([^"]+)"', rf'src="{BASE}/{post.blog.slug}/images/\1"', body_html)


def prepare(blogs: list[Blog]) -> None:
    """Render bodies, summaries, expected texts and comment threads for every post."""
    by_key = {f"{b.slug}/{p.slug}": p for b in blogs for p in b.posts}
    for blog in blogs:
        for post in blog.posts:
            body = post.body_md
            original = post.labels.get("duplicate_of")
            if original:
                source = by_key[original]
                post.labels["duplicate_of_url"] = source.url
                body = source.body_md + "\n" + body
            post.body_html = _resolve_links(post, _md_to_html(body))
            post.expected = expected_text(post.body_html)
            post.summary = _summary(post.expected)
            post.comments = make_comments(post)


def expected_text(body_html: str) -> str:
    """Return the article's plain text: one block (paragraph, heading, item) a line."""
    root = lxml_html.fragment_fromstring(body_html, create_parent="div")
    lines: list[str] = []
    for el in root.iter("p", "h1", "h2", "h3", "h4", "li", "pre", "td", "th"):
        if el.tag == "p" and any(a.tag == "li" for a in el.iterancestors()):
            continue
        text = " ".join(el.text_content().split())
        if text:
            lines.append(text)
    return "\n".join(lines) + "\n"


def _summary(text: str, words: int = 38) -> str:
    first = text.split("\n")
    flat = " ".join(first).split()
    if len(flat) <= words:
        return " ".join(flat)
    return " ".join(flat[:words]).rstrip(",.;:")


COMMENTERS = [
    "Rosa Delgado",
    "Kwame Mensah",
    "Hannah Cole",
    "Ibrahim Haddad",
    "Mia Kowalski",
    "Sean Brennan",
    "Yuki Tanaka",
    "Olu Adeyemi",
    "Claire Dubois",
    "Ravi Patel",
    "Ingrid Halvorsen",
    "Ben Carter",
    "Lucía Herrera",
    "Tom Ashby",
    "Nadia Rahman",
    "Petra Novak",
    "Chris O'Donnell",
    "Aisha Bello",
    "Jonas Weber",
    "Grace Liu",
    "Mateo Rossi",
    "Elif Şahin",
    "Sam Whitaker",
]
COMMENT_TEXTS = [
    "This matches what we saw when we changed our refund policy last spring.",
    "Sharing this with my whole team before Monday's stand-up.",
    "I'd push back a little on the second point: in B2B the account manager often owns this.",
    "We tried something similar and CSAT went up four points in a quarter.",
    "The bit about tone in written replies is so underrated.",
    "Great post. Do you have a template for the handover note?",
    "Our agents would love this, but our ticketing tool makes it painful.",
    "Thank you for writing this. Printing it for the break room.",
    "Counterpoint: customers sometimes just want the fastest answer, not the warmest.",
    "How do you measure this without adding yet another survey?",
    "Spot on about escalations being a symptom rather than the problem.",
    "I ran a contact centre for ten years and I wish I'd read this on day one.",
    "The example with the delayed parcel made me laugh because it was us.",
    "We call this 'the second answer' internally: the one after the policy answer.",
    "Would love a follow-up on how this works for night-shift teams.",
    "This is why I keep coming back to this blog.",
    "We killed our scripted greetings last year and nobody missed them.",
    "Our NPS comments say exactly this, almost word for word.",
    "Fair, but who pays for the extra handle time?",
    "Forwarded to our head of product with the subject line 'read this'.",
    "The list in the middle is going straight into our onboarding deck.",
    "Lovely writing, and practical too.",
    "We learned this the hard way during a billing outage.",
    "Agree with every word except the part about chat bots.",
]


def make_comments(post: Post) -> list[dict[str, str]]:
    """Return the post's comment thread: labels.comments comments, chosen by hash."""
    count = int(post.labels.get("comments", 0))
    seed = int(hashlib.sha1(post.url.encode()).hexdigest()[:8], 16)
    thread = []
    for i in range(count):
        when = post.date.replace(minute=(post.date.minute + 7 * i) % 60)
        day = min(post.date.day + 1 + i // 6, 28 if post.date.month == 2 else 30)
        when = when.replace(day=day)
        thread.append(
            {
                "author": COMMENTERS[(seed + 5 * i) % len(COMMENTERS)],
                "text": COMMENT_TEXTS[(seed // 7 + 3 * i) % len(COMMENT_TEXTS)],
                "date": f"{when:%B} {when.day}, {when:%Y} at {when:%H:%M}",
                "iso": when.isoformat(),
                "id": str(post.number * 100 + i + 1),
            }
        )
    return thread


# --- writing -----------------------------------------------------------------------


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(DEMO / "templates"),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["rfc822"] = lambda d: email.utils.format_datetime(d)
    env.filters["iso"] = lambda d: d.isoformat()
    env.filters["longdate"] = lambda d: f"{d:%B} {d.day}, {d:%Y}"
    env.filters["oldcms"] = _oldcms_body
    env.globals["BASE"] = BASE
    return env


def _oldcms_body(body_html: str) -> str:
    """Turn paragraphs into <br><br>-separated text, as 2004-era CMSs did."""
    out = re.sub(r"<p>(.*?)</p>", r"\1<br>\n<br>\n", body_html, flags=re.S)
    out = re.sub(r"<h2>(.*?)</h2>", r'<font size="3"><b>\1</b></font><br>\n', out, flags=re.S)
    return re.sub(r"<h3>(.*?)</h3>", r"<b>\1</b><br>\n", out, flags=re.S)


def _write(path: Path, text: str, written: set[Path]) -> None:
    if path in written:
        raise SystemExit(f"{path}: written twice")
    written.add(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def _svg(label: str) -> str:
    digest = hashlib.sha1(label.encode()).hexdigest()
    hue = int(digest[:2], 16) * 360 // 256
    bars = "".join(
        f'<rect x="{20 + 40 * i}" y="{110 - int(digest[2 + i], 16) * 5}" width="28" '
        f'height="{int(digest[2 + i], 16) * 5 + 10}" fill="hsl({hue},55%,{35 + 6 * i}%)"/>'
        for i in range(7)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" viewBox="0 0 320 160">'
        f'<rect width="320" height="160" fill="hsl({hue},40%,95%)"/>{bars}'
        f'<text x="16" y="148" font-family="sans-serif" font-size="12">{label}</text></svg>\n'
    )


def build_site(blogs: list[Blog], out: Path) -> None:
    """Write the static tree: root index, robots.txt, and per blog home, feed, pages."""
    if out.exists():
        if any(out.iterdir()) and not (out / MARKER_FILE).exists():
            raise SystemExit(f"{out}: not empty and not a demo site; refusing to replace it")
        shutil.rmtree(out)
    env = _env()
    written: set[Path] = set()
    _write(out / MARKER_FILE, "generated by demo/build.py\n", written)
    _write(out / "robots.txt", "User-agent: *\nDisallow: /private/\n", written)
    _write(out / "private" / "index.html", env.get_template("private.html").render(), written)
    _write(out / "index.html", env.get_template("root.html").render(blogs=blogs), written)
    for blog in blogs:
        if blog.posts:
            _build_blog(env, blog, out, written)


def _build_blog(env: jinja2.Environment, blog: Blog, out: Path, written: set[Path]) -> None:
    root = out / blog.slug
    recent = blog.posts[:5]
    months = {f"{p.date:%Y/%m}": f"{p.date:%B %Y}" for p in blog.posts}
    archives = [(f"{BASE}/{blog.slug}/{m}/", months[m]) for m in sorted(months, reverse=True)]
    categories = sorted({c for p in blog.posts for c in p.meta.get("categories", [])})
    ctx = {"blog": blog, "recent": recent, "archives": archives, "categories": categories}
    home = env.get_template("home.html")
    _write(root / "index.html", home.render(posts=blog.posts, heading="", **ctx), written)
    for href, label in archives:
        month_posts = [p for p in blog.posts if f"{p.date:%B %Y}" == label]
        page = home.render(posts=month_posts, heading=f"Archive: {label}", **ctx)
        _write(root / href.removeprefix(f"{BASE}/{blog.slug}/") / "index.html", page, written)
    _write(root / "images" / "avatar.svg", _svg(blog.name), written)
    feed_name = "feed.xml" if blog.feed == "rss" else "atom.xml"
    updated = max(p.date for p in blog.posts)
    feed = env.get_template(f"{blog.feed}.xml").render(updated=updated, **ctx)
    _write(root / feed_name, feed, written)
    for post in blog.posts:
        related = [p for p in blog.posts if p is not post][:3]
        page = env.get_template(f"{blog.theme}.html").render(post=post, related=related, **ctx)
        _write(root / post.url.removeprefix(f"{BASE}/{blog.slug}/") / "index.html", page, written)
        comments = env.get_template("comments.xml").render(post=post)
        _write(
            root / post.url.removeprefix(f"{BASE}/{blog.slug}/") / "comments.xml", comments, written
        )
        if post.image:
            name = post.image.rsplit("/", 1)[1]
            _write(root / "images" / name, _svg(name.removesuffix(".svg")), written)


def truth_records(blogs: list[Blog]) -> list[dict[str, Any]]:
    """Return one label record per post, sorted by blog then date."""
    records = []
    for blog in blogs:
        for post in sorted(blog.posts, key=lambda p: p.date):
            labels = post.labels
            records.append(
                {
                    "blog": blog.slug,
                    "blog_name": blog.name,
                    "slug": post.slug,
                    "url": post.url,
                    "feed_url": blog.feed_url,
                    "feed_link": post.feed_link,
                    "guid": post.guid,
                    "title": post.title,
                    "author": post.author,
                    "published": post.date.isoformat(),
                    "month": post.month,
                    "kind": labels.get("kind", "article"),
                    "on_topic": bool(labels["on_topic"]),
                    "promotional": bool(labels.get("promotional", False)),
                    "duplicate_of": labels.get("duplicate_of_url"),
                    "house": blog.house,
                    "comments": int(labels.get("comments", 0)),
                    "feed_has_full_content": blog.mode == "full",
                    "feed_has_date": bool(labels.get("feed_date", True)),
                    "short": bool(labels.get("short", False)),
                    "author_summary": post.meta.get("excerpt") or post.meta.get("description"),
                    "word_count": len(post.expected.split()),
                    "expected_text": post.expected,
                }
            )
    return records


def write_corpus(blogs: list[Blog], site: Path, out: Path) -> int:
    """Write OUTDIR/<id>/source.html, expected.txt, url.txt for every post; return count."""
    count = 0
    for blog in blogs:
        for post in blog.posts:
            page_dir = out / post.corpus_id
            page_dir.mkdir(parents=True, exist_ok=True)
            rel = post.url.removeprefix(f"{BASE}/")
            src = (site / rel / "index.html").read_text(encoding="utf-8")
            local = "http://127.0.0.1:8000"
            (page_dir / "source.html").write_text(src.replace(BASE, local), encoding="utf-8")
            (page_dir / "expected.txt").write_text(post.expected, encoding="utf-8")
            (page_dir / "url.txt").write_text(
                post.url.replace(BASE, local) + "\n", encoding="utf-8"
            )
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """Build the site and truth.json; optionally the extraction corpus."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEMO / "site", help="site directory")
    parser.add_argument("--truth", type=Path, default=DEMO / "truth.json", help="labels file")
    parser.add_argument("--corpus", type=Path, help="also write an extraction corpus here")
    args = parser.parse_args(argv)
    blogs = load_blogs(DEMO)
    prepare(blogs)
    build_site(blogs, args.out)
    records = truth_records(blogs)
    args.truth.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(records, indent=1, ensure_ascii=False, sort_keys=False) + "\n"
    args.truth.write_text(text, encoding="utf-8", newline="\n")
    print(f"{len(blogs)} blogs, {len(records)} posts -> {args.out}, {args.truth}", file=sys.stderr)
    if args.corpus:
        n = write_corpus(blogs, args.out, args.corpus)
        print(f"{n} corpus pages -> {args.corpus}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
