"""Blurbs: the editor's, the author's summary, or verbatim sentences that stand alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mash.blurb import (
    author_summary,
    blog_wide_descriptions,
    blurb_of,
    choose_blurb,
    speaks_as_author,
    split_sentences,
    stands_alone,
    words,
)
from mash.records import StoredPost

TEXT = """Hi everyone, welcome back to the blog!
Disclosure: this post contains affiliate links to tools we use.
Last week a customer called our support line three times about the same refund.
Each agent apologised, and each agent promised a refund that never arrived.
The refund failed because no agent owned the customer's problem from start to finish.
Ownership of the refund, not another apology, is what the customer needed.
Subscribe to our newsletter for more posts like this.
"""


def test_blurb_is_verbatim_and_about_the_point() -> None:
    blurb = choose_blurb(TEXT, "Who owns the refund?", 280)
    assert blurb
    assert "refund" in blurb.lower()
    assert blurb in " ".join(TEXT.split()) or all(s in TEXT for s in split_sentences(blurb))
    for bad in ("Hi everyone", "Disclosure", "Subscribe"):
        assert bad not in blurb


def test_blurb_respects_budget() -> None:
    assert len(choose_blurb(TEXT, "Who owns the refund?", 120)) <= 120


def test_no_usable_sentence_gives_empty_blurb() -> None:
    assert choose_blurb("Hello! Subscribe now.", "x", 280) == ""


# The first words(): one str.translate, fast only on ASCII text (see #5).
_SEPARATORS = '!"#$%&()*+,./:;<=>?@[\\]^_`{|}~0123456789“”‘’—–…«»·•'
_ORACLE_TABLE = str.maketrans({c: " " for c in _SEPARATORS})


@settings(max_examples=500)
@given(
    st.text(st.characters(codec=None))
    | st.text(st.sampled_from(_SEPARATORS + "aZé'- \u00a0\u2009\x1c\x85İ\ud800\U0001f600"))
)
def test_words_splits_any_text_as_translate_does(text: str) -> None:
    assert words(text) == text.lower().translate(_ORACLE_TABLE).split()


# --- a quote stands alone (see #20) ------------------------------------------------------

POINTING_BACK = [
    "It cut the queue in half within a month of the change.",
    "Its job is triage: read each message and route it to the right team.",
    "They called back three times before anyone owned the refund.",
    "He rewrote the refund macro so that it names the customer's order.",
    "She asked the customer what a good outcome would look like.",
    "This is why the first reply matters more than any survey score.",
    "These are the tickets that reopen after the customer stops replying.",
    "That is the moment a policy answer becomes a relationship.",
    "Those agents closed fewer tickets and kept more customers.",
    "Such changes take a quarter to show up in the satisfaction scores.",
    "The trick is to give the day shift the same conditions as the night.",
    "The answer is a written summary sent before every night shift starts.",
    "Here is what the customer actually hears when the agent reads the script.",
    "Five from the lowest scores, read in full, not summarised.",
    "12 agents covered every channel from ten at night to six in the morning.",
    "But the customer had already opened a second ticket by then.",
    "So the team stopped measuring handle time for a whole quarter.",
    "Also, the refund arrived two weeks after the customer had given up.",
    "However, the scores rose only after the team changed the first reply.",
    "Then the agent promised a callback that nobody scheduled.",
    "Still, most customers never complain to the company directly.",
    "And the customer remembers the second answer, not the policy.",
    "Or the agent can ask what a good outcome looks like for the customer.",
    "Yet the survey asked about the agent and never about the policy.",
    "Instead, the team reads twenty customer comments aloud each month.",
    "The first reply decides whether it is also a bad ending for the customer.",
    "Most of them never call back once the refund has been refused.",
    "One good thing: a conversation that went well, so the next shift starts well.",
    "Routing: the model assigns the right team most of the time.",
    "As we said, the survey asked about the agent and never about the policy.",
    "The former cut the queue in half within a month of the change.",
]
STANDING_ALONE = [
    "Great agents give a second answer right after the policy answer.",
    "When the status page is honest, the support queue stays manageable.",
    "Most complaints that looked like a rude agent were a bad policy under time pressure.",
    "Customers remember how the first reply made them feel, not the policy it quoted.",
    "One question changes every support call: what would a good outcome look like?",
]


@pytest.mark.parametrize("sentence", POINTING_BACK)
def test_a_sentence_that_points_back_does_not_stand_alone(sentence: str) -> None:
    assert not stands_alone(sentence)
    # ... and is never the blurb, though it is the only usable sentence carrying the title
    filler = "Support teams answer many different kinds of customer questions every single day."
    assert not choose_blurb(f"{filler}\nShort.\n{sentence}", sentence).startswith(sentence[:20])


@pytest.mark.parametrize("sentence", STANDING_ALONE)
def test_a_sentence_that_stands_alone_is_accepted(sentence: str) -> None:
    assert stands_alone(sentence)
    assert choose_blurb(sentence, sentence) == sentence


def test_a_sentence_that_needs_the_one_before_comes_only_with_it() -> None:
    lead = "A broken item is a bad start for any customer."
    follower = "The first reply decides whether it is also a bad ending."
    text = f"Shipping teams pack thousands of parcels a week.\nFine.\n{lead} {follower}\nFine."
    blurb = choose_blurb(text, "Damaged in transit: the first reply decides the ending")
    assert follower in blurb  # it carries the title's words ...
    assert blurb == f"{lead} {follower}"  # ... so it comes with the sentence it leans on
    assert not stands_alone(follower) and stands_alone(lead)


def test_the_authors_first_person_loses_to_an_equal_sentence() -> None:
    mine = "We answer refund questions within one hour every working day."
    neutral = "You answer refund questions within one hour every working day."
    for first, second in ((mine, neutral), (neutral, mine)):
        text = f"Refund teams differ.\nFine.\n{first}\nFine.\n{second}\nFine."
        assert choose_blurb(text, "Refund questions") == neutral
    assert speaks_as_author(mine) and not speaks_as_author(neutral)


# --- the author's own summary (see #20) ---------------------------------------------------

BODY = (
    "Every support conversation has a first answer. It is the policy answer, the one in "
    "the knowledge base.\nGreat agents give a second answer. It comes right after the first."
)
WRITTEN = "Every agent can give the policy answer. Great agents add what they will do next."


@pytest.mark.parametrize(
    "automatic",
    [
        "Every support conversation has a first answer. It is the policy answer, the [&#8230;]",
        "Every support conversation has a first answer. It is the policy answer, the one in…",
        "Every support conversation has a first answer. It is the poli",
        "Great agents give a second answer. It comes right after the first.",
    ],
)
def test_a_summary_lifted_from_the_body_is_not_the_authors(automatic: str) -> None:
    assert author_summary([automatic], BODY, "The Second Answer") == ""
    assert author_summary([automatic, WRITTEN], BODY, "The Second Answer") == WRITTEN


def test_a_written_summary_loses_its_read_more_line_and_fits_the_budget() -> None:
    feed = f"{WRITTEN} The post The Second Answer appeared first on The Customer Side."
    assert author_summary([feed], BODY, "The Second Answer") == WRITTEN
    assert author_summary([f"{WRITTEN} Continue reading →"], BODY, "x") == WRITTEN
    # cut at a sentence end where one fits, else at a word, marked
    assert author_summary([WRITTEN], BODY, "x", 45) == "Every agent can give the policy answer."
    cut = author_summary([WRITTEN], BODY, "x", 30)
    assert cut == "Every agent can give the…" and len(cut) <= 30
    assert author_summary(["The Second Answer"], BODY, "The Second Answer") == ""
    assert author_summary(["Too short to say."], BODY, "x") == ""


def _stored(**fields: Any) -> StoredPost:
    base: dict[str, Any] = {
        "id": 1,
        "feed_url": "https://a.example/feed",
        "blog": "A",
        "guid": "g",
        "url": "https://a.example/p",
        "title": "The Second Answer",
        "author": "Dana",
        "published": None,
        "first_seen": datetime(2026, 10, 1, tzinfo=UTC),
        "summary_html": "",
        "html": "",
        "text": BODY,
        "source": "feed",
        "comments": None,
    }
    return StoredPost(**{**base, **fields})


def test_the_blurb_is_the_editors_then_the_authors_summary_then_a_quote() -> None:
    post = _stored(page_description=WRITTEN)
    assert blurb_of(post, 280, "My words.") == ("My words.", "editor")
    assert blurb_of(post, 280) == (WRITTEN, "summary")
    summary_only = _stored(summary_html=f"<p>{WRITTEN}</p>")
    assert blurb_of(summary_only, 280) == (WRITTEN, "summary")
    auto = _stored(summary_html="<p>Every support conversation has a first answer. It […]</p>")
    blurb, source = blurb_of(auto, 280)
    assert source == "quote" and blurb.startswith("Great agents give a second answer.")
    # a description every post of the blog shares is its tagline, not a summary
    shared = blog_wide_descriptions([post, replace(post, id=2, url="https://a.example/q")])
    assert shared == {WRITTEN}
    assert blurb_of(post, 280, blog_wide=shared)[1] == "quote"
