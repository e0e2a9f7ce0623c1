"""mash.tokens: words found and hashed in numpy are blurb.words' words (see #5)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mash.blurb import words
from mash.rank import features_of, post_features, topic_profile
from mash.records import Newsletter, StoredPost
from mash.tokens import HashSet, hash_words, phrase_hash, word_hashes

# letters, separators of every kind blurb knows, wide spaces, capitals and emoji
_ALPHABET = "abcXYZ dé’“\u00a0\u2003\u3000\x1c\x01\x7f\n\t-'9.,ÉÜ🙂«»—\x85Ωщ\x00"


def _hashes_of(text: str) -> list[int]:
    found = words(text.replace("\x00", " "))
    return word_hashes(found) if found else []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=_ALPHABET, max_size=60), min_size=1, max_size=5))
def test_hashed_words_are_blurbs_words(texts: list[str]) -> None:
    hashed = hash_words(texts)
    for i, text in enumerate(texts):
        mine = hashed.hashes[hashed.first[i] : hashed.first[i + 1]].tolist()
        assert mine == _hashes_of(text), text
        assert hashed.count(i) == len(mine)
        assert (hashed.text[hashed.first[i] : hashed.first[i + 1]] == i).all()


def test_case_and_separators_do_not_change_a_word() -> None:
    one, two, three = word_hashes(["customer", "service", "élan"])
    hashed = hash_words(["CUSTOMER—Service’s ÉLAN", "customer\u00a0service"])
    assert hashed.hashes.tolist()[:2] == [one, two]
    assert hashed.hashes.tolist()[3] == three
    assert hashed.hashes.tolist()[4:] == [one, two]


def test_long_words_differ_by_their_ends_and_length() -> None:
    a, b, c = word_hashes(["internationalisation", "internationalization", "internationalise"])
    assert len({a, b, c}) == 3


def test_phrases_are_found_where_they_are_and_not_across_texts() -> None:
    hashed = hash_words(["please join us now", "join", "us later", ""])
    size, join_us = phrase_hash("Join us")
    grams, text = hashed.grams(size)
    assert [t for g, t in zip(grams.tolist(), text.tolist(), strict=True) if g == join_us] == [0]
    found, position = hashed.grams_at(2, hashed.first[:-1])
    assert len(found) == 2  # "please join" and "us later": "join" | "us" crosses texts
    assert position.tolist() == [0, 5]


def test_sample_keeps_the_grams_whose_hash_is_a_multiple() -> None:
    rng = random.Random(5)
    text = " ".join("".join(rng.choices("abcdefgh", k=4)) for _ in range(400))
    hashed = hash_words([text, text.upper()])
    grams, owner = hashed.grams(5)
    for every in (2, 8, 3):
        sampled, sampled_owner = hashed.sample(5, every)
        keep = grams % every == 0
        assert sampled.tolist() == grams[keep].tolist()
        assert sampled_owner.tolist() == owner[keep].tolist()
        assert len(sampled)


def test_openings_and_wholes_hash_the_first_words_and_all_words() -> None:
    hashed = hash_words(["a b c d", "a b", "", "a b c d e"])
    _, whole_abcd = phrase_hash("a b c d")
    _, ab = phrase_hash("a b")
    assert hashed.openings(4) == [whole_abcd, 0, 0, whole_abcd]
    assert hashed.wholes()[:3] == [whole_abcd, ab, 0]


def test_hash_set_finds_its_values_and_their_index() -> None:
    values = word_hashes(["refund", "agent", "queue"])
    found = HashSet(values)
    hashed = hash_words(["the agent put the refund in the queue, agent"])
    at, which = found.find(hashed.hashes)
    assert at.tolist() == [1, 4, 7, 8]
    assert [values[i] for i in which.tolist()] == [hashed.hashes[i] for i in at.tolist()]
    assert HashSet([]).find(hashed.hashes)[0].tolist() == []


def _post(i: int, text: str, title: str = "A title") -> StoredPost:
    when = datetime(2026, 10, 5, tzinfo=UTC)
    return StoredPost(
        id=i,
        feed_url="https://blog.example/feed",
        blog="Blog",
        guid=str(i),
        url=f"https://blog.example/p/{i}",
        title=title,
        author="A",
        published=when,
        first_seen=when,
        summary_html="",
        html="",
        text=text,
        source="feed",
        comments=None,
    )


_CALL = " Join us for the webinar, save your seat! "


def test_features_do_not_depend_on_the_batch_a_post_is_in() -> None:
    profile = topic_profile(Newsletter())
    rng = random.Random(7)
    vocabulary = [
        "our",
        "support",
        "agents",
        "answered",
        "every",
        "customer",
        "complaint",
        "within",
        "the",
        "hour",
    ]
    posts = [
        _post(
            i,  # the call to action is read before word 700, not after
            _CALL * (i % 2 == 0) + " ".join(rng.choices(vocabulary, k=700)) + _CALL,
            " ".join(rng.choices(vocabulary, k=5)),
        )
        for i in range(300)  # over a megabyte of text: several batches
    ]
    posts[7] = replace(posts[7], text=posts[7].text + "\nThis post originally appeared on CX Co.")
    together, counts = features_of(posts, profile)
    assert counts.table.shape == (300, len(counts.words))
    for i in (0, 7, 150, 299):
        alone = post_features(posts[i], profile)
        assert alone == together[i]
        assert (features_of([posts[i]], profile)[1].table[0] == counts.table[i]).all()
    assert together[7].origin == "cx co" and not together[8].origin
    assert together[0].promo == ("webinar", "sign-up call") and together[1].promo == ()
    assert together[0].fingerprint != together[1].fingerprint


def test_features_of_no_posts() -> None:
    found, counts = features_of([], topic_profile(Newsletter()))
    assert found == [] and counts.table.shape[0] == 0
