"""Render an Issue into its files: email HTML, plain text, preview .eml and web page.

Templates are looked up in the editor's templates folder first, then in the packaged
defaults; ``{% extends "default/email.html" %}`` extends the default being replaced.
Autoescape is always on.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2

from mash.errors import RenderError
from mash.mail import (
    build_preview_eml,
    list_unsubscribe_mailto,
    render_email_html,
    render_email_text,
)
from mash.records import Issue, RenderedIssue, SmtpSettings
from mash.site import render_issue_page

# The defaults ship inside the package (see #20): a plain `pip install .` can build an issue.
PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "templates"


def make_env(templates_dir: Path | None = None) -> jinja2.Environment:
    """Return the Jinja2 environment: the editor's templates, then the packaged ones."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None and templates_dir.resolve() != PACKAGED_TEMPLATES:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders.append(jinja2.FileSystemLoader(PACKAGED_TEMPLATES))
    loaders.append(jinja2.PrefixLoader({"default": jinja2.FileSystemLoader(PACKAGED_TEMPLATES)}))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_issue(
    issue: Issue, env: jinja2.Environment, smtp: SmtpSettings, now: datetime
) -> RenderedIssue:
    """Render every file of an issue (the .eml dated ``now``); a template error becomes
    RenderError naming it."""
    try:
        mailto = list_unsubscribe_mailto(smtp, issue.newsletter)
        html = render_email_html(issue, env, unsubscribe_url=mailto)
        text = render_email_text(issue, env, unsubscribe_url=mailto)
        web = render_issue_page(issue, env, root="../site/")  # output/site/ beside it
    except jinja2.TemplateError as e:
        name = getattr(e, "name", None) or getattr(e, "filename", None) or "template"
        line = getattr(e, "lineno", None)
        where = f"{name}:{line}" if line else str(name)
        raise RenderError(where, f"cannot render the issue: {e}") from e
    return RenderedIssue(
        issue=issue,
        email_html=html,
        email_text=text,
        web_html=web,
        eml=build_preview_eml(issue, html, text, smtp, now),
    )
