"""Signed unsubscribe tokens (mash.unsubscribe); the endpoint is tested in test_subscribe.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mash.unsubscribe import make_token, unsubscribe_link, verify_token

SECRET = "s3cret-for-tests"
LIST_ID = "Monthly Mash <monthly-mash.example.org>"


def test_token_round_trip() -> None:
    token = make_token("Ann@Example.com", LIST_ID, SECRET)
    assert verify_token(token, LIST_ID, SECRET) == "ann@example.com"


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),  # signature altered
        lambda t: (
            make_token("bob@example.com", LIST_ID, SECRET).split(".")[0] + "." + t.split(".")[1]
        ),  # address swapped
        lambda t: t.split(".")[0],  # no signature
        lambda t: "!!!." + t.split(".")[1],  # not base64
        lambda t: "",
    ],
)
def test_tampered_tokens_are_refused(change: object) -> None:
    token = make_token("ann@example.com", LIST_ID, SECRET)
    assert callable(change)
    assert verify_token(change(token), LIST_ID, SECRET) is None


def test_token_is_bound_to_list_and_secret() -> None:
    token = make_token("ann@example.com", LIST_ID, SECRET)
    assert verify_token(token, "Other <other.example.org>", SECRET) is None
    assert verify_token(token, LIST_ID, "another-secret") is None


@given(st.emails())
def test_every_address_round_trips(address: str) -> None:
    token = make_token(address, LIST_ID, SECRET)
    assert verify_token(token, LIST_ID, SECRET) == address.strip().lower()
    assert all(c.isalnum() or c in "-_." for c in token)


def test_unsubscribe_link_keeps_an_existing_query() -> None:
    assert unsubscribe_link("https://e.org/u", "a.b") == "https://e.org/u?token=a.b"
    assert unsubscribe_link("https://e.org/u?l=1", "a.b") == "https://e.org/u?l=1&token=a.b"
    assert unsubscribe_link("", "a.b") == ""
