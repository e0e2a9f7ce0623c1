"""Blurbs: verbatim sentences about the post's point, never greetings or boilerplate."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mash.blurb import choose_blurb, split_sentences, words

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
