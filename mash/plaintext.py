"""Turn the editor's rendered essay (sanitised HTML) into plain text, with html2text.

Paragraphs are reflowed (a hard-wrapped Markdown paragraph is one paragraph, not one
per source line), lists keep their bullets and numbers, and, with ``marks``, emphasis
keeps its ``*`` / ``**`` and every link's URL is kept as a numbered reference under
the text (see #20). Images are left out: a text part cannot show them.
"""

from __future__ import annotations

import re

import html2text

# html2text escapes what Markdown would read as a list or heading at a line's start
# ("3\. steps", "\- dash"); a reader of the text part sees no Markdown, so undo those.
_LINE_START_ESCAPE = re.compile(r"^(\s*)(\d+)\\\.|^(\s*)\\([-+#])", re.MULTILINE)


def essay_text(html: str, *, width: int = 0, marks: bool = True) -> str:
    """Return html as plain text, paragraphs apart, wrapped at width (0: one line each).

    With ``marks``, emphasis is ``*x*`` / ``**x**`` and links are ``[text][1]`` with
    ``[1]: URL`` lines at the end; without, only the words remain (for previews and
    summaries). Does not sanitise: the essay was sanitised when it was rendered.
    """
    if not html.strip():
        return ""
    converter = html2text.HTML2Text(bodywidth=width)
    converter.unicode_snob = True  # keep “ ” – … as they are, not ASCII look-alikes
    converter.ignore_images = True
    converter.ignore_emphasis = not marks
    converter.ignore_links = not marks
    converter.emphasis_mark = "*"
    converter.inline_links = False  # numbered references keep the prose readable
    converter.wrap_links = False  # a URL is never broken across lines
    converter.wrap_list_items = True
    converter.skip_internal_links = True
    text = converter.handle(html)
    text = _LINE_START_ESCAPE.sub(_unescape, text)
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _unescape(match: re.Match[str]) -> str:
    if match.group(2) is not None:
        return f"{match.group(1)}{match.group(2)}."
    return f"{match.group(3)}{match.group(4)}"
