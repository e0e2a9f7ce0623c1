"""parse_bounce on sample bounces, complaints and non-bounces (#16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mash.bounces import categorize, is_hard, parse_bounce

DATA = Path(__file__).parent / "data" / "bounces"
EXPECTED = {
    k: v for k, v in json.loads((DATA / "expected.json").read_text()).items() if k[0] != "_"
}


def test_every_sample_has_its_expected_records():
    assert sorted(EXPECTED) == sorted(p.name for p in DATA.glob("*.eml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_sample_gives_the_expected_records(name, newline):
    raw = (DATA / name).read_bytes().replace(b"\n", newline.encode())
    records = parse_bounce(raw)
    expected = EXPECTED[name]
    assert len(records) == len(expected), records
    for record, want in zip(records, expected, strict=True):
        for key, value in want.items():
            assert getattr(record, key) == value, (name, key, record)
        assert record.reason and "\n" not in record.reason


def test_reason_is_the_servers_words_on_one_line():
    (record,) = parse_bounce((DATA / "postfix-user-unknown.eml").read_bytes())
    assert record.reason == (
        "550 5.1.1 <jane.doe@example.com>: Recipient address rejected: User unknown in "
        "virtual mailbox table"
    )
    assert record.source == "dsn"


def test_non_standard_bounce_names_the_detector_that_found_the_address():
    (record,) = parse_bounce((DATA / "qmail-no-mailbox.eml").read_bytes())
    assert record.source == "flufl.bounce:Qmail"
    assert "no mailbox here by that name" in record.reason


def test_one_record_per_failed_recipient_and_only_failed_ones():
    raw = (DATA / "postfix-user-unknown.eml").read_bytes()
    extra = (
        b"Final-Recipient: rfc822; second@example.com\n"
        b"Action: failed\n"
        b"Status: 5.2.2\n"
        b"Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n\n"
        b"Final-Recipient: rfc822; fine@example.com\n"
        b"Action: delivered\n"
        b"Status: 2.0.0\n\n"
        b"--4F1C21E0042.1793610847/mx.mash.example.org\nContent-Description: Undelivered"
    )
    raw = raw.replace(
        b"--4F1C21E0042.1793610847/mx.mash.example.org\nContent-Description: Undelivered", extra, 1
    )
    records = parse_bounce(raw)
    assert [(r.recipient, r.status, r.hard) for r in records] == [
        ("jane.doe@example.com", "5.1.1", True),
        ("second@example.com", "5.2.2", False),
    ]


def test_auth_failure_reports_are_not_complaints():
    raw = (
        (DATA / "arf-abuse.eml")
        .read_bytes()
        .replace(b"Feedback-Type: abuse", b"Feedback-Type: auth-failure")
    )
    assert parse_bounce(raw) == []


def test_out_of_office_from_a_daemon_looking_sender_is_still_no_bounce():
    raw = (
        (DATA / "out-of-office.eml")
        .read_bytes()
        .replace(b"From: Jane Roe <jane.roe@example.com>", b"From: postmaster@example.com")
    )
    assert parse_bounce(raw) == []


@pytest.mark.parametrize("raw", [b"", b"\x00\xff garbage", b"Subject: x\n\n" + b"a" * 100_000])
def test_garbage_gives_nothing_and_never_raises(raw):
    assert parse_bounce(raw) == []


@pytest.mark.parametrize(
    ("status", "text", "category", "hard"),
    [
        ("5.1.1", "550 5.1.1 User unknown", "user-unknown", True),
        ("5.0.0", "550 Requested action not taken: mailbox unavailable", "user-unknown", True),
        ("5.7.1", "550 5.7.1 Recipient address rejected: user unknown", "user-unknown", True),
        ("5.7.1", "554 5.7.1 blocked using zen.spamhaus.org", "policy", False),
        ("5.2.2", "552 5.2.2 Mailbox full", "mailbox-full", False),
        ("4.2.2", "452 4.2.2 over quota", "mailbox-full", False),
        (
            "4.1.1",
            "450 4.1.1 <a@b.example>: Recipient address rejected: User unknown",
            "user-unknown",
            True,
        ),
        ("4.4.1", "connect to mx.example.com: Connection timed out", "network", False),
        ("5.1.2", "Host or domain name not found", "host-unknown", True),
        ("5.1.6", "", "moved", True),
        ("5.1.8", "553 5.1.8 Sender address rejected: Domain not found", "sender", False),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "too-large", False),
        ("5.0.0", "", "", False),
        # real servers' words for which the code alone misleads (Sisimai's corpus, #16)
        (
            "5.4.4",
            "Name service error for domain example.com: Host not found, try again",
            "network",
            False,
        ),
        (
            "5.4.4",
            "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)",
            "host-unknown",
            True,
        ),
        (
            "5.7.1",
            "554 5.7.1 <a@b.example>: Recipient address rejected: Access denied",
            "user-unknown",
            True,
        ),
        (
            "5.7.0",
            "550 5.7.0 <a@b.example>: Recipient address rejected: Virus detected",
            "policy",
            False,
        ),
        (
            "5.7.13",
            "525 5.7.13 <a@b.example>: Recipient address rejected: Disabled recipient address",
            "disabled",
            False,
        ),
        (
            "4.0.0",
            "DNS type 'mx' lookup of example.jp responded with code NXDOMAIN Domain name not found",
            "host-unknown",
            False,
        ),
        ("5.0.0", "553 mx.example.com does not exist", "host-unknown", True),
        ("5.0.0", "550 <a@b.example> does not exist", "user-unknown", True),
    ],
)
def test_the_hard_soft_table(status, text, category, hard):
    found = categorize(status, text)
    assert found == category
    assert is_hard(found, status, text) is hard


def test_ses_complaint_in_an_sns_envelope_cut_by_a_relay():
    notice = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "dana.b@example.org"}],
            "complaintFeedbackType": "abuse",
        },
        "mail": {"commonHeaders": {"messageId": "<2026-11.dana.b@mash.example.org>"}},
    }
    body = json.dumps({"Type": "Notification", "Message": json.dumps(notice)})
    body = body[:60] + "!\n " + body[60:]  # a relay cut the long line (RFC 5322 2.1.1)
    raw = f"From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n{body}\n"
    (record,) = parse_bounce(raw.encode())
    assert (record.recipient, record.kind, record.feedback_type, record.message_id) == (
        "dana.b@example.org",
        "complaint",
        "abuse",
        "<2026-11.dana.b@mash.example.org>",
    )
    delivery = raw.replace("Complaint", "Delivery")
    assert parse_bounce(delivery.encode()) == []


def test_a_flufl_bounce_without_its_detector_list_is_asked_through_all_failures(monkeypatch):
    from types import SimpleNamespace

    from flufl.bounce import _scan

    from mash import bounces

    monkeypatch.setattr(bounces, "_scan", SimpleNamespace(all_failures=_scan.all_failures))
    (record,) = parse_bounce((DATA / "qmail-no-mailbox.eml").read_bytes())
    assert (record.recipient, record.source, record.hard) == (
        "ivo@example.net",
        "flufl.bounce",
        True,
    )
