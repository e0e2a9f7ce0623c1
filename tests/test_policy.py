"""The bounce policy as mash.pipeline.mailing applies it for mailboxes and webhooks: VERP return
paths, soft bounces over issues, `mash bounces import`, on both engines (see #16). The
pure rule (mash.subscribers.decide_bounce) is tested in test_subscribers."""

from __future__ import annotations

import mailbox as stdlib_mailbox
from pathlib import Path
from typing import Any

import pytest

from mash import cli
from mash.config import load_config
from mash.errors import ConfigError
from mash.pipeline import mailing
from mash.records import Bounce
from mash.store import Store, open_store
from mash.subscribers import BOUNCED, COMPLAINED, SUBSCRIBED, UNSUBSCRIBED, Subscriber
from mash.subscribers.tokens import envelope_sender, make_verp_token, verp_address
from tests.test_send import Collector, free_port

DATA = Path(__file__).parent / "data" / "bounces"
SECRET = "s3cret-for-tests"


# --- the rules (pure) ----------------------------------------------------------------------


def test_verp_tokens_name_the_address_only_with_the_secret() -> None:
    token = make_verp_token("2026-11", "Ann@Example.com", SECRET)
    assert len(f"bounces+{token}") <= 64 and token == token.lower()
    candidates = ["bob@example.com", "ann@example.com"]
    assert verp_address(token, candidates, SECRET) == "ann@example.com"
    assert verp_address(token, candidates, "another secret") is None
    assert verp_address(token.upper(), candidates, SECRET) == "ann@example.com"  # lower-cased
    assert verp_address("2026-11.7f3a9c", candidates, SECRET) is None
    path = envelope_sender(
        "bounces@example.org", "mash@example.org", verp=True, month="2026-11",
        email="ann@example.com", secret=SECRET,
    )  # fmt: skip
    assert path == f"bounces+{token}@example.org"
    plain = envelope_sender(
        "bounces@example.org", "mash@example.org", verp=False, month="2026-11",
        email="ann@example.com", secret=SECRET,
    )  # fmt: skip
    assert plain == "bounces@example.org"
    assert envelope_sender("", "mash@example.org", verp=True, month="", email="", secret="") == (
        "mash@example.org"
    )


# --- the policy on the store ---------------------------------------------------------------


def _listed(store: Store, *addresses: str) -> None:
    store.import_subscribers([Subscriber(a) for a in addresses], "list.csv")


def _sent(store: Store, month: str, *addresses: str) -> None:
    for address in addresses:
        store.claim(month, address, f"<mash.{month}.x@example.org>")
        store.mark_sent(month, address, f"<mash.{month}.x@example.org>")


def _soft(recipient: str, month: str) -> Bounce:
    return Bounce(
        recipient=recipient,
        status="4.2.2",
        hard=False,
        reason="mailbox full",
        message_id=f"<mash.{month}.abc@example.org>",
    )


def test_soft_bounces_count_consecutive_issues_sent(store: Store, tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    _listed(store, "sam@example.com", "tia@example.com")
    for month in ("2026-08", "2026-09", "2026-10", "2026-11"):
        _sent(store, month, "sam@example.com", "tia@example.com")

    def bounce(address: str, month: str) -> list[mailing.Applied]:
        return mailing.apply_bounces(
            store,
            [_soft(address, month)],
            source="mailbox",
            config=config,
            secret=SECRET,
        )

    # tia: soft bounces on 08, 10 and 11: 09 was delivered, so only two in a row
    for month in ("2026-08", "2026-10", "2026-11"):
        assert bounce("tia@example.com", month) == []
    # sam: three in a row; the third suppresses, the history says why
    assert bounce("sam@example.com", "2026-09") == []
    assert bounce("sam@example.com", "2026-10") == []
    (change,) = bounce("sam@example.com", "2026-11")
    assert change.status == BOUNCED
    assert "soft bounces on 3 issues in a row (2026-09, 2026-10, 2026-11)" in change.reason
    assert bounce("sam@example.com", "2026-11") == []  # the same mail again: nothing
    assert store.subscriber("tia@example.com").status == SUBSCRIBED  # type: ignore[union-attr]
    assert store.subscriber_history("sam@example.com")[-1].reason == change.reason


def test_a_complaint_overrides_an_unsubscribe_but_a_bounce_does_not(
    store: Store, tmp_path: Path
) -> None:
    config = load_config(_config(tmp_path))
    _listed(store, "uma@example.com", "vic@example.com")
    store.opt_out("uma@example.com", "list", "one-click")
    store.opt_out("vic@example.com", "list", "one-click")
    hard = Bounce("uma@example.com", "5.1.1", True, "user unknown")
    complaint = Bounce(
        "vic@example.com", "", False, "abuse", kind="complaint", feedback_type="abuse"
    )
    for record in (hard, complaint):
        mailing.apply_bounces(store, [record], source="ses", config=config, secret=SECRET)
    assert store.subscriber("uma@example.com").status == UNSUBSCRIBED  # type: ignore[union-attr]
    assert store.subscriber("vic@example.com").status == COMPLAINED  # type: ignore[union-attr]


def test_a_verp_return_path_names_the_address_whatever_the_bounce_says(
    store: Store, tmp_path: Path
) -> None:
    config = load_config(_config(tmp_path))
    _listed(store, "wes@example.com")
    _sent(store, "2026-11", "wes@example.com")
    token = make_verp_token("2026-11", "wes@example.com", SECRET)
    record = Bounce("w.e.s@relay.example", "5.1.1", True, "no such user", verp=token)
    (change,) = mailing.apply_bounces(
        store, [record], source="mailbox", config=config, secret=SECRET
    )
    assert change.email == "wes@example.com"
    assert change.reason.startswith("hard bounce 5.1.1 on the 2026-11 issue")


# --- `mash bounces import` -------------------------------------------------------------------


def _config(folder: Path, soft_limit: int | None = None) -> Path:
    path = folder / "feeds.yaml"
    limit = f"bounces:\n  soft_limit: {soft_limit}\n" if soft_limit else ""
    path.write_text(f"feeds: []\n{limit}", encoding="utf-8")
    return path


def test_bounces_import_applies_the_policy_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], database_env: str | Path
) -> None:
    config = _config(tmp_path, soft_limit=2)
    with open_store(load_config(config)) as store:
        _listed(store, "jane.doe@example.com", "omar@example.net", "reader.one@yahoo.example")
        _sent(store, "2026-10", "omar@example.net")
    box = stdlib_mailbox.mbox(str(tmp_path / "bounces.mbox"))
    for name in ("postfix-user-unknown.eml", "exim-mailbox-full.eml", "arf-abuse.eml"):
        box.add((DATA / name).read_bytes())
    box.close()

    assert cli.main(["--config", str(config), "bounces", "import", "--mbox", str(box._path)]) == 0
    err = capsys.readouterr().err
    assert "jane.doe@example.com is now bounced: hard bounce 5.1.1" in err
    assert "reader.one@yahoo.example is now complained: spam complaint (abuse)" in err
    assert "2 addresses suppressed" in err
    with open_store(load_config(config)) as store:
        statuses = {s.email: s.status for s in store.subscribers()}
        soft = store.engine.query("SELECT month FROM soft_bounces")
    assert statuses == {
        "jane.doe@example.com": BOUNCED,
        "omar@example.net": SUBSCRIBED,  # one soft bounce of the two the config allows
        "reader.one@yahoo.example": COMPLAINED,
    }
    assert [r["month"] for r in soft] == ["2026-10"]

    assert cli.main(["--config", str(config), "bounces", "import", "--mbox", str(box._path)]) == 0
    assert "0 addresses suppressed" in capsys.readouterr().err


def test_the_soft_limit_is_a_config_setting(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text("feeds: []\nbounces:\n  soft_limit: 0\n")
    with pytest.raises(ConfigError, match="soft_limit must be a whole number from 1 to 100"):
        load_config(tmp_path / "feeds.yaml")


# --- the return path: send, bounce back, read it ----------------------------------------------


class _Envelopes(Collector):
    """Keeps each message's MAIL FROM beside it."""

    def __init__(self) -> None:
        super().__init__()
        self.senders: dict[str, str] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            self.senders[rcpt] = envelope.mail_from
        return await super().handle_DATA(server, session, envelope)


def _dsn(to: str, recipient: str) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.org\r\nTo: {to}\r\nDelivered-To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--b--\r\n"
    ).encode()


@pytest.mark.parametrize("verp", [True, False])
def test_issues_carry_the_return_path_and_verp_bounces_name_the_reader(
    tmp_path: Path, database_env: str | Path, verp: bool
) -> None:
    from aiosmtpd.controller import Controller

    from mash.bounces import parse_bounce
    from tests.test_send import SECRET as SEND_SECRET
    from tests.test_send import make_config, people, send

    collector = _Envelopes()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = make_config(tmp_path, port, return_path="bounces@example.org", verp=verp)
        with open_store(config) as store:
            store.import_subscribers(people(2), "list.csv")
        report = send(config)
    finally:
        controller.stop()
    assert len(report.sent) == 2
    reader = people(2)[1].email
    envelope = collector.senders[reader]
    if not verp:
        assert set(collector.senders.values()) == {"bounces@example.org"}
        return
    token = make_verp_token("2013-08", reader, SEND_SECRET)
    assert envelope == f"bounces+{token}@example.org"
    assert len(set(collector.senders.values())) == 2  # one return path per reader
    # the bounce comes back to that address, naming a relay's rewrite of the reader
    records = parse_bounce(_dsn(envelope, "forwarded@relay.example"))
    assert records and records[0].verp == token
    with open_store(config) as store:
        (change,) = mailing.apply_bounces(
            store,
            records,
            source="mailbox",
            config=config,
            secret=SEND_SECRET,
        )
        assert store.subscriber(reader).status == BOUNCED  # type: ignore[union-attr]
    assert change.reason.startswith("hard bounce 5.1.1 on the 2013-08 issue")
