"""The bounce webhooks of `mash server` (mash.web.webhooks): each service's proof checked
with test keys, the policy applied once per event, bad proofs refused with 403 changing
nothing (see #16). SNS fetches its test certificate from a server on 127.0.0.1, with the
allow-list widened only here."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mash.errors import ConfigError
from mash.records import Config, FetchSettings, ServerSettings
from mash.store import open_store
from mash.subscribers import BOUNCED, COMPLAINED, SUBSCRIBED, Subscriber
from mash.web.webhooks import Webhook, handlers, sns_cert_url_allowed
from tests.test_send import free_port
from tests.test_server import Running, _serving, request, state

MAILGUN_KEY = "mailgun-test-key"
POSTMARK_TOKEN = "postmark-test-token"


# --- the test keys and the loopback certificate host -----------------------------------------


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


class CertHost:
    """An HTTP server on 127.0.0.1 serving the certificate and the SubscribeURL."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.hits.append(self.path)
                body = _certificate(SNS_KEY) if self.path.endswith(".pem") else b"<ok/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def cert_host() -> Iterator[CertHost]:
    host = CertHost()
    try:
        yield host
    finally:
        host.httpd.shutdown()
        host.httpd.server_close()


@pytest.fixture
def hooked(tmp_path: Path, database: str | Path, cert_host: CertHost) -> Iterator[Running]:
    def webhooks(config: Config) -> dict[str, Webhook]:
        config = replace(config, server=ServerSettings(sendgrid_public_key=SENDGRID_PUBLIC))
        loopback = FetchSettings(allow_private=(ipaddress.ip_network("127.0.0.0/8"),))
        env = {"MASH_MAILGUN_SIGNING_KEY": MAILGUN_KEY, "MASH_POSTMARK_TOKEN": POSTMARK_TOKEN}
        return handlers(
            config,
            env,
            sns_url_allowed=lambda url: url.startswith(cert_host.base),  # the test's only
            fetch_settings=loopback,
        )

    with _serving(tmp_path, database, webhooks=webhooks) as run:
        with open_store(run.db) as store:
            for address in ("ann@example.com", "bob@example.com", "cy@example.com"):
                store.subscribe(Subscriber(address, consent_source="cli"), "added")
        yield run


def status_of(run: Running, address: str) -> str:
    with open_store(run.db) as store:
        found = store.subscriber(address)
    assert found is not None
    return found.status


def post_json(
    run: Running, path: str, payload: Any, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    body = json.dumps(payload) if not isinstance(payload, bytes | str) else payload
    sent = {"Content-Type": "application/json", **(headers or {})}
    status, text, _ = request(run.port, "POST", path, body, sent)
    return status, text


# --- Amazon SES via SNS ------------------------------------------------------------------------


def sns_message(
    cert_host: CertHost,
    kind: str,
    message: str,
    *,
    key: rsa.RSAPrivateKey = SNS_KEY,
    version: str = "1",
    message_id: str = "m-1",
    cert_url: str | None = None,
) -> dict[str, str]:
    fields: dict[str, str] = {
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:mash-bounces",
        "Message": message,
        "Timestamp": "2026-12-06T12:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url or f"{cert_host.base}SimpleNotificationService-test.pem",
    }
    order = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    if kind == "SubscriptionConfirmation":
        fields["Token"] = "tok"
        fields["SubscribeURL"] = f"{cert_host.base}confirm-subscription?Token=tok"
        order = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{name}\n{fields[name]}\n" for name in order if name in fields)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    fields["Signature"] = base64.b64encode(signature).decode()
    return fields


def ses_bounce(address: str, kind: str = "Permanent", code: str = "5.1.1") -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": kind,
                "bouncedRecipients": [
                    {
                        "emailAddress": address,
                        "status": code,
                        "diagnosticCode": f"smtp; 550 {code} user unknown",
                    }
                ],
            },
            "mail": {"commonHeaders": {"messageId": "<mash.2026-11.abc@example.org>"}},
        }
    )


def test_sns_subscription_is_confirmed_once_verified(hooked: Running, cert_host: CertHost) -> None:
    message = sns_message(cert_host, "SubscriptionConfirmation", "confirm me")
    assert post_json(hooked, "/webhooks/ses", message)[0] == 200
    assert "/confirm-subscription?Token=tok" in cert_host.hits


def test_sns_bounce_and_complaint_apply_once(hooked: Running, cert_host: CertHost) -> None:
    bounce = sns_message(cert_host, "Notification", ses_bounce("ann@example.com"))
    status, text = post_json(hooked, "/webhooks/ses", bounce)
    assert (status, text) == (200, "1 events\n")
    assert status_of(hooked, "ann@example.com") == BOUNCED
    with open_store(hooked.db) as store:
        reason = store.subscriber("ann@example.com").status_reason  # type: ignore[union-attr]
    assert reason.startswith("hard bounce 5.1.1 on the 2026-11 issue")
    before = state(hooked.db)
    assert post_json(hooked, "/webhooks/ses", bounce)[0] == 200  # SNS retries: counted once
    assert state(hooked.db) == before
    complaint = json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {"complainedRecipients": [{"emailAddress": "bob@example.com"}]},
        }
    )
    signed = sns_message(cert_host, "Notification", complaint, version="2", message_id="m-2")
    assert post_json(hooked, "/webhooks/ses", signed)[0] == 200
    assert status_of(hooked, "bob@example.com") == COMPLAINED
    assert sum(path.endswith(".pem") for path in cert_host.hits) == 1  # the cert is cached


def test_sns_bad_signatures_change_nothing(hooked: Running, cert_host: CertHost) -> None:
    before = state(hooked.db)
    good = sns_message(cert_host, "Notification", ses_bounce("ann@example.com"))
    forged = sns_message(cert_host, "Notification", ses_bounce("ann@example.com"), key=OTHER_KEY)
    tampered = {**good, "Message": ses_bounce("bob@example.com")}
    unsigned = {k: v for k, v in good.items() if k != "Signature"}
    elsewhere = sns_message(
        cert_host,
        "Notification",
        ses_bounce("ann@example.com"),
        cert_url="https://evil.example/SimpleNotificationService-x.pem",
    )
    for bad in (forged, tampered, unsigned, elsewhere, {**good, "SignatureVersion": "9"}):
        status, text = post_json(hooked, "/webhooks/ses", bad)
        assert status == 403, text
    sub = sns_message(cert_host, "SubscriptionConfirmation", "x", key=OTHER_KEY)
    assert post_json(hooked, "/webhooks/ses", sub)[0] == 403
    assert post_json(hooked, "/webhooks/ses", b"not json")[0] == 400
    assert state(hooked.db) == before
    assert not any("confirm-subscription" in hit for hit in cert_host.hits)


def test_the_sns_certificate_host_must_be_amazons() -> None:
    assert sns_cert_url_allowed(
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem"
    )
    for url in (
        "http://sns.eu-west-1.amazonaws.com/cert.pem",  # not https
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sqs.eu-west-1.amazonaws.com/cert.pem",
        "https://127.0.0.1/cert.pem",
    ):
        assert not sns_cert_url_allowed(url), url


# --- Mailgun -------------------------------------------------------------------------------


def mailgun(event: dict[str, Any], *, key: str = MAILGUN_KEY, at: float | None = None) -> Any:
    timestamp = str(int(at if at is not None else time.time()))
    token = hashlib.sha256(json.dumps(event).encode() + timestamp.encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


def test_mailgun_failures_and_complaints(hooked: Running) -> None:
    failed = {
        "id": "ev-1",
        "event": "failed",
        "severity": "permanent",
        "recipient": "ann@example.com",
        "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"},
    }
    assert post_json(hooked, "/webhooks/mailgun", mailgun(failed))[0] == 200
    assert status_of(hooked, "ann@example.com") == BOUNCED
    temporary = {**failed, "id": "ev-2", "severity": "temporary", "recipient": "cy@example.com"}
    assert post_json(hooked, "/webhooks/mailgun", mailgun(temporary))[0] == 200
    assert status_of(hooked, "cy@example.com") == SUBSCRIBED  # one soft bounce
    complained = {"id": "ev-3", "event": "complained", "recipient": "bob@example.com"}
    assert post_json(hooked, "/webhooks/mailgun", mailgun(complained))[0] == 200
    assert status_of(hooked, "bob@example.com") == COMPLAINED


def test_mailgun_bad_signatures_and_replays_change_nothing(hooked: Running) -> None:
    before = state(hooked.db)
    event = {"id": "ev-9", "event": "complained", "recipient": "ann@example.com"}
    for bad in (
        mailgun(event, key="wrong key"),
        mailgun(event, at=time.time() - 3600),  # a replay of an old, genuine call
        {**mailgun(event), "signature": {}},
        {"event-data": event},
    ):
        assert post_json(hooked, "/webhooks/mailgun", bad)[0] == 403
    assert state(hooked.db) == before


# --- Postmark ------------------------------------------------------------------------------


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"postmark:{password}".encode()).decode()}


def test_postmark_needs_its_password(hooked: Running) -> None:
    event = {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": "HardBounce",
        "Email": "ann@example.com",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
    }
    before = state(hooked.db)
    assert post_json(hooked, "/webhooks/postmark", event, basic("wrong"))[0] == 403
    assert post_json(hooked, "/webhooks/postmark", event)[0] == 403
    assert state(hooked.db) == before
    assert post_json(hooked, "/webhooks/postmark", event, basic(POSTMARK_TOKEN))[0] == 200
    assert status_of(hooked, "ann@example.com") == BOUNCED
    spam = {"RecordType": "SpamComplaint", "ID": 43, "Email": "bob@example.com"}
    assert post_json(hooked, "/webhooks/postmark", spam, basic(POSTMARK_TOKEN))[0] == 200
    assert status_of(hooked, "bob@example.com") == COMPLAINED


# --- SendGrid ------------------------------------------------------------------------------


def sendgrid(events: list[dict[str, Any]], at: float | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    timestamp = str(int(at if at is not None else time.time()))
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def test_sendgrid_signed_events(hooked: Running) -> None:
    events = [
        {
            "email": "ann@example.com",
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 user unknown",
            "sg_event_id": "sg-1",
        },
        {"email": "bob@example.com", "event": "spamreport", "sg_event_id": "sg-2"},
        {"email": "cy@example.com", "event": "delivered", "sg_event_id": "sg-3"},
    ]
    body, headers = sendgrid(events)
    before = state(hooked.db)
    tampered = body.replace(b"bob@", b"cy@")
    assert post_json(hooked, "/webhooks/sendgrid", tampered, headers)[0] == 403
    old_body, old_headers = sendgrid(events, at=time.time() - 3600)
    assert post_json(hooked, "/webhooks/sendgrid", old_body, old_headers)[0] == 403
    assert post_json(hooked, "/webhooks/sendgrid", body)[0] == 403  # unsigned
    assert state(hooked.db) == before
    assert post_json(hooked, "/webhooks/sendgrid", body, headers) == (200, "2 events\n")
    assert status_of(hooked, "ann@example.com") == BOUNCED
    assert status_of(hooked, "bob@example.com") == COMPLAINED
    assert status_of(hooked, "cy@example.com") == SUBSCRIBED


def test_an_unconfigured_webhook_is_not_there(tmp_path: Path, database: str | Path) -> None:
    with _serving(tmp_path, database) as run:
        assert request(run.port, "POST", "/webhooks/mailgun", "{}")[0] == 404
        assert request(run.port, "POST", "/webhooks/nosuch", "{}")[0] == 404


def test_handlers_exist_only_for_configured_secrets(tmp_path: Path) -> None:
    from tests.test_server import make_config

    config = make_config(tmp_path, 25)
    assert set(handlers(config, {})) == {"ses"}
    env = {"MASH_MAILGUN_SIGNING_KEY": "k", "MASH_POSTMARK_TOKEN": "t"}
    assert set(handlers(config, env)) == {"ses", "mailgun", "postmark"}
    bad = replace(config, server=ServerSettings(sendgrid_public_key="x"))
    with pytest.raises(ConfigError, match="sendgrid_public_key cannot be read"):
        handlers(bad, {})
