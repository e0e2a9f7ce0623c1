"""Bounce and complaint webhooks of the sending services, on `mash server` (#16).

Each handler checks the service's proof first; a request that fails it gets 403 and
changes nothing. Then each event becomes ``Bounce`` records (decided hard or soft by
mash.bounces, as mailed bounces are) and goes through the policy (mash.pipeline.mailing), once
per event id: a service's retry records nothing twice.

=========  ====================================================================  ==========
service    proof                                                                 setting
=========  ====================================================================  ==========
ses        the SNS message signature (RSA, SignatureVersion 1 SHA1 / 2 SHA256),   sns_topic_arn
           checked with the certificate at SigningCertURL, which must be https    (optional)
           on sns.<region>.amazonaws.com; fetched through mash's guarded fetch
           (public addresses only), cached. A SubscriptionConfirmation, once
           verified, is confirmed by fetching its SubscribeURL (same rules).
mailgun    HMAC-SHA256(signing key, timestamp + token), the timestamp within     mailgun_key_env
           15 minutes (a replayed request is refused)
postmark   it does not sign: HTTP basic auth on the webhook URL, the password    postmark_token_env
           a token from the environment (https://postmark:TOKEN@host/...)
sendgrid   the Signed Event Webhook: ECDSA P-256 over timestamp + body, its      sendgrid_public_key
           public "Verification Key" in feeds.yaml, timestamp within 15 minutes
=========  ====================================================================  ==========

A service whose secret is not configured has no route (404).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mash.bounces import judge, ses_records
from mash.errors import ConfigError
from mash.pipeline import mailing
from mash.records import Bounce, Config, FetchSettings
from mash.web._wsgi import StartResponse

MAX_BODY = 1024 * 1024
MAX_AGE = 15 * 60  # seconds a signed timestamp may be old (or ahead)
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
Webhook = Callable[[mailing.Lists, dict[str, Any], StartResponse], Iterable[bytes]]
Fetch = Callable[[str], bytes | None]


@dataclass(frozen=True)
class Event:
    """One webhook event: its id (counted once) and the records it gives."""

    key: str
    records: tuple[Bounce, ...]


class Refused(Exception):
    """A webhook call that fails its proof or cannot be read: (status, why)."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status


def sns_cert_url_allowed(url: str) -> bool:
    """Tell whether an SNS SigningCertURL or SubscribeURL may be fetched: https on
    sns.<region>.amazonaws.com only, else anyone could sign with their own certificate."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(_SNS_HOST.match(parts.hostname or ""))


def handlers(
    config: Config,
    environ: Mapping[str, str],
    *,
    sns_url_allowed: Callable[[str], bool] = sns_cert_url_allowed,
    fetch_settings: FetchSettings | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Webhook]:
    """Return the webhook handlers whose secrets are set, by service name.

    ``sns_url_allowed`` and ``fetch_settings`` are for tests (a certificate on
    loopback); the config has no way to widen them.
    """
    settings = config.server
    sns = Sns(sns_url_allowed, fetch_settings or config.fetch, settings.sns_topic_arn)
    found: dict[str, Webhook] = {"ses": _handler("ses", sns.events)}
    if key := environ.get(settings.mailgun_key_env, ""):
        found["mailgun"] = _handler("mailgun", lambda env, body: mailgun_events(body, key, clock()))
    if token := environ.get(settings.postmark_token_env, ""):
        found["postmark"] = _handler(
            "postmark", lambda env, body: postmark_events(env, body, token)
        )
    if public := settings.sendgrid_public_key:
        try:
            verifier = sendgrid_key(public)
        except ValueError as e:
            raise ConfigError(str(e), str(config.path)) from e
        found["sendgrid"] = _handler(
            "sendgrid", lambda env, body: sendgrid_events(env, body, verifier, clock())
        )
    return found


def _handler(source: str, events: Callable[[dict[str, Any], bytes], list[Event]]) -> Webhook:
    def handle(
        lists: mailing.Lists, environ: dict[str, Any], start: StartResponse
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start, "405 Method Not Allowed", "POST the events here.")
        try:
            body = _body(environ)
            found = events(environ, body)
        except Refused as e:
            sys.stderr.write(f"mash server: webhook {source} refused: {e}\n")
            return _answer(start, e.status, str(e))
        with lists.open() as store:
            for event in found:
                for change in mailing.apply_bounces(
                    store, event.records, source=source, config=lists.config, secret=lists.secret
                ):
                    sys.stderr.write(
                        f"mash server: {source} event {event.key}: {change.email} is now "
                        f"{change.status}: {change.reason}\n"
                    )
        return _answer(start, "200 OK", f"{len(found)} events")

    return handle


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > MAX_BODY:
        raise Refused("413 Content Too Large", "the body is too large")
    return environ["wsgi.input"].read(length) if length else b""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused("400 Bad Request", f"not JSON: {e}") from e


def _answer(start: StartResponse, status: str, text: str) -> list[bytes]:
    body = (text + "\n").encode()
    start(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


def _fresh(timestamp: str, now: float) -> None:
    try:
        age = abs(now - float(timestamp))
    except ValueError as e:
        raise Refused("403 Forbidden", "the signed timestamp is not a number") from e
    if age > MAX_AGE:
        raise Refused("403 Forbidden", "the signed timestamp is too old: a replay?")


# --- Amazon SES via SNS ------------------------------------------------------------------


_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


class Sns:
    """Verify SNS messages, with a cache of signing certificates by URL."""

    def __init__(
        self, url_allowed: Callable[[str], bool], settings: FetchSettings, topic_arn: str
    ) -> None:
        self.url_allowed = url_allowed
        self.settings = settings
        self.topic_arn = topic_arn
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def events(self, environ: dict[str, Any], body: bytes) -> list[Event]:
        message = _json(body)
        if not isinstance(message, dict) or message.get("Type") not in _SNS_FIELDS:
            raise Refused("400 Bad Request", "not an SNS notification or subscription")
        self.verify(message)
        if self.topic_arn and message.get("TopicArn") != self.topic_arn:
            raise Refused("403 Forbidden", f"topic {message.get('TopicArn')!r} is not ours")
        if message["Type"] == "SubscriptionConfirmation":
            self._fetch(str(message.get("SubscribeURL", "")), "SubscribeURL")
            return []
        try:
            notice = json.loads(str(message.get("Message", "")))
        except ValueError:
            return []  # a test message from the console
        if not isinstance(notice, dict):
            return []
        return [Event(str(message["MessageId"]), tuple(ses_records(notice)))]

    def verify(self, message: dict[str, Any]) -> None:
        """Raise Refused unless the message carries a genuine SNS signature."""
        version = str(message.get("SignatureVersion", ""))
        algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
        if algorithm is None:
            raise Refused("403 Forbidden", f"unknown SignatureVersion {version!r}")
        text = "".join(
            f"{name}\n{message[name]}\n"
            for name in _SNS_FIELDS[message["Type"]]
            if isinstance(message.get(name), str)
        )
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError) as e:
            raise Refused("403 Forbidden", "the signature is not base64") from e
        key = self._key(str(message.get("SigningCertURL", "")))
        try:
            key.verify(signature, text.encode(), padding.PKCS1v15(), algorithm)
        except InvalidSignature as e:
            raise Refused("403 Forbidden", "the SNS signature is not valid") from e

    def _key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            if url in self._keys:
                return self._keys[url]
        pem = self._fetch(url, "SigningCertURL")
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError as e:
            raise Refused("403 Forbidden", "the signing certificate cannot be read") from e
        if not isinstance(key, rsa.RSAPublicKey):
            raise Refused("403 Forbidden", "the signing certificate has no RSA key")
        with self._lock:
            self._keys[url] = key
        return key

    def _fetch(self, url: str, what: str) -> bytes:
        if not self.url_allowed(url):
            raise Refused("403 Forbidden", f"{what} {url!r} is not on sns.<region>.amazonaws.com")
        from mash.fetch import fetch_document  # only here: the server never loads fetch

        result = fetch_document(url, self.settings)
        if result.error or result.status != 200:
            raise Refused("502 Bad Gateway", f"cannot fetch {what} {url}: {result.error}")
        return result.content


# --- Mailgun ---------------------------------------------------------------------------


def mailgun_events(body: bytes, key: str, now: float) -> list[Event]:
    """Verify and read a Mailgun webhook (JSON with ``signature`` and ``event-data``)."""
    data = _json(body)
    signed = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signed, dict):
        raise Refused("403 Forbidden", "no signature")
    timestamp, token = str(signed.get("timestamp", "")), str(signed.get("token", ""))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signed.get("signature", ""))):
        raise Refused("403 Forbidden", "the Mailgun signature is not valid")
    _fresh(timestamp, now)
    event = data.get("event-data")
    if not isinstance(event, dict):
        return []
    recipient = str(event.get("recipient", ""))
    key_of = str(event.get("id") or token)
    if event.get("event") == "complained":
        complaint = Bounce(recipient.lower(), "", False, "complaint (Mailgun)", "complaint")
        return [Event(key_of, (complaint,))]
    if event.get("event") != "failed":
        return []
    found = event.get("delivery-status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}
    words = " ".join(
        str(status.get(k, "")) for k in ("code", "message", "description") if status.get(k)
    )
    record = judge(recipient, str(status.get("enhanced-code", "")), words, "mailgun")
    if event.get("severity") == "temporary":
        record = replace(record, hard=False)
    return [Event(key_of, (record,))]


# --- Postmark ----------------------------------------------------------------------------

_POSTMARK_HARD = {"HardBounce", "BadEmailAddress"}
_POSTMARK_COMPLAINT = {"SpamComplaint"}


def postmark_events(environ: dict[str, Any], body: bytes, token: str) -> list[Event]:
    """Check the basic-auth password of a Postmark webhook and read its event."""
    given = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = given.partition(" ")
    try:
        password = base64.b64decode(encoded, validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError, ValueError):
        password = ""
    if scheme.lower() != "basic" or not hmac.compare_digest(password.encode(), token.encode()):
        raise Refused("403 Forbidden", "the Postmark webhook password is not valid")
    data = _json(body)
    if not isinstance(data, dict):
        return []
    email, kind = str(data.get("Email", "")), str(data.get("Type", ""))
    key = str(data.get("ID") or data.get("MessageID") or "")
    if data.get("RecordType") == "SpamComplaint" or kind in _POSTMARK_COMPLAINT:
        return [
            Event(key, (Bounce(email.lower(), "", False, "complaint (Postmark)", "complaint"),))
        ]
    if data.get("RecordType") != "Bounce":
        return []
    words = f"{data.get('Details', '')} {data.get('Description', '')}"
    record = judge(email, "", words, "postmark")
    if (kind in _POSTMARK_HARD) != record.hard:  # Postmark's own word on hard or soft
        status = record.status if kind not in _POSTMARK_HARD else "5" + record.status[1:]
        record = replace(record, hard=kind in _POSTMARK_HARD, status=status)
    return [Event(key, (record,))]


# --- SendGrid ----------------------------------------------------------------------------


def sendgrid_key(public: str) -> ec.EllipticCurvePublicKey:
    """Load SendGrid's Verification Key (base64 DER, as its settings page shows it)."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(public))
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"server.sendgrid_public_key cannot be read: {e}") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("server.sendgrid_public_key is not an ECDSA key")
    return key


def sendgrid_events(
    environ: dict[str, Any], body: bytes, key: ec.EllipticCurvePublicKey, now: float
) -> list[Event]:
    """Verify a SendGrid Signed Event Webhook and read its events."""
    timestamp = environ.get("HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP", "")
    try:
        signature = base64.b64decode(
            environ.get("HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE", ""), validate=True
        )
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature) as e:
        raise Refused("403 Forbidden", "the SendGrid signature is not valid") from e
    _fresh(timestamp, now)
    data = _json(body)
    events = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        email, kind = str(item.get("email", "")), item.get("event")
        key_of = str(item.get("sg_event_id", ""))
        if kind == "spamreport":
            complaint = Bounce(email.lower(), "", False, "complaint (SendGrid)", "complaint")
            events.append(Event(key_of, (complaint,)))
        elif kind == "bounce":
            record = judge(
                email, str(item.get("status", "")), str(item.get("reason", "")), "sendgrid"
            )
            if item.get("type") == "blocked":  # SendGrid's word for a temporary refusal
                record = replace(record, hard=False)
            events.append(Event(key_of, (record,)))
    return events
