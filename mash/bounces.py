"""Read bounces and complaints: one ``Bounce`` record per failed recipient (see #16).

``parse_bounce(raw)`` reads, in this order:

1. ARF complaint reports (RFC 5965, ``multipart/report; report-type=feedback-report``):
   one ``kind="complaint"`` record per complained-of address (``Original-Rcpt-To``,
   ``Removal-Recipient``, else the reported message's ``To``). Feedback types abuse,
   fraud, virus, other, opt-out and opt-out-list are complaints; ``auth-failure`` (DMARC
   and DKIM failure reports) and ``not-spam`` say nothing about the reader: ``[]``.
2. RFC 3464 delivery status notifications: each per-recipient block with
   ``Action: failed`` (``delayed``, ``delivered``, ``relayed`` and ``expanded`` are not
   failures and give nothing). The recipient is ``Original-Recipient`` when it is an
   address (the one we sent to), else ``Final-Recipient``.
3. Amazon SES notifications mailed by SNS (JSON): ``Bounce`` gives a record per bounced
   recipient, ``Complaint`` per complained one, ``Delivery`` nothing.
4. Everything else that looks like a bounce (a mailer-daemon sender, a bounce subject,
   or failure wording): flufl.bounce's detectors find the addresses (Postfix, Exim,
   qmail, Exchange, Yahoo, AOL ...); where they find none, the addresses that the
   failure text names, else the ``To`` of the returned message.

Auto-replies (RFC 3834 ``Auto-Submitted: auto-replied`` without a delivery report,
``X-Autoreply``, "Out of office", "Automatic reply" ...) and ordinary mail give ``[]``.

The decision (``hard``) is ours, not flufl.bounce's, and reads the server's words first,
because servers put a generic status (``5.0.0``, ``550``) on specific failures. The first
rule that matches the diagnostic text names the category; without one, the status code
(RFC 3463) does; the class (``5``/``4``) of a category's status comes from the server.

=================  ====================================================  ======  ========
category           the text says (examples) / the status is              hard    status
=================  ====================================================  ======  ========
rate-limit         too many messages / connections, rate limited          no      X.7.0
policy             spam, blocked, blocklist, reputation, DMARC/SPF/DKIM,  no      X.7.1
                   relaying denied, rejected by policy; 5.7.x, X.7.1
mailbox-full       mailbox full, over quota, insufficient storage;        no      X.2.2
                   X.2.2, 4.2.x
too-large          message too large / size limit; X.2.3, X.3.4           no      X.3.4
disabled           account disabled / suspended / inactive / locked;      no      X.2.1
                   X.7.13
moved              has moved, no longer at; X.1.6, 5.7.17                 yes     5.1.6
host-unknown       host or domain not found, no such domain, unrouteable  yes     5.1.2
                   address, null MX; X.1.2, 5.1.10, 5.7.18
user-unknown       user unknown, no such user, mailbox not found / does   yes     5.1.1
                   not exist / unavailable, invalid recipient, address
                   rejected; 5.1.1, 5.1.3, 5.2.1 (mailbox disabled)
sender             our sender or our server refused: 5.1.7, 5.1.8         no      X.1.8
expired            delivery time expired, retry timeout; X.4.7            no      X.4.7
network            connection refused / timed out, no route; X.4.x        no      X.4.0
system             the remote mail system: X.3.x                          no      X.3.0
content            X.6.x: content or media not accepted                   no      X.6.0
other              anything else                                          no      X.0.0
=================  ====================================================  ======  ========

A class-4 status is hard only where the words say the user or domain does not exist
(a Postfix in soft-bounce mode answers ``450 4.1.1 ... User unknown``). Policy and spam
blocks stay soft unless the text also says the user is unknown: they are about our mail
or our server, not the address. A disabled account is soft: it may come back, and the
policy suppresses it after repeated soft bounces anyway.

It does not read webhooks (those are JSON), nor decide what happens to a subscriber.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import Message
from typing import Any

from flufl.bounce import _scan  # its detectors one by one; see _flufl

from mash.records import Bounce

# flufl.bounce logs every detector it runs at INFO, and its detectors' own lapses at
# ERROR with a traceback it then re-raises: we catch those, so keep its log quiet.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

MAX_BYTES = 10 * 1024 * 1024  # a bounce with a huge attachment: read only this much
_REASON_CHARS = 300

_ADDRESS = re.compile(
    r"(?<![\w.+=-])([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})(?![\w-])"
)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_REPLY = re.compile(r"(?<![\d.#-])([45][0-5]\d)(?=[ :-]|$)(?![-.]\d)", re.MULTILINE)
_COMPLAINT_TYPES = {"abuse", "fraud", "virus", "other", "opt-out", "opt-out-list"}
_FAILED_ACTIONS = {"failed"}


def parse_bounce(raw: bytes) -> list[Bounce]:
    """Return one record per failed recipient of a bounce or complaint; [] for other mail.

    Never raises on malformed mail: what cannot be read gives fewer records.
    """
    msg = email.message_from_bytes(raw[:MAX_BYTES], policy=email.policy.compat32)
    report = _report_type(msg)
    if report == "feedback-report" or _find_part(msg, "message/feedback-report"):
        return _complaints(msg)
    jmrp = _hotmail_complaints(msg)
    if jmrp:
        return jmrp
    notice = _ses_notification(msg)
    if notice is not None:
        return _with_context(_ses_records(notice), msg)
    status_parts = _delivery_status_parts(msg)
    if not status_parts and not _looks_like_bounce(msg):
        return []
    records = _dsn_records(status_parts, msg) if status_parts else []
    if not records and status_parts and _only_not_failed(status_parts):
        return []  # a delay warning or a delivery receipt
    if not records and _DELAY_SUBJECT.search(_decoded(msg.get("subject", ""))):
        return []  # "Warning: could not send message for past 4 hours": not yet a failure
    if not records:
        records = _text_records(msg)
    return _with_context(records, msg)


def ses_records(notice: dict[str, Any]) -> list[Bounce]:
    """Return the records of an Amazon SES notification (the JSON SNS delivers)."""
    return _ses_records(notice)


def judge(recipient: str, status: str, text: str, source: str) -> Bounce:
    """Return the record of one failed recipient from a status and the server's words,
    decided as the mail bounces are (for webhooks, which carry both as JSON)."""
    text = _one_line(text)
    return _decide(recipient.strip().lower(), _status_in(status), _reply_in(text), text, source)


# --- complaints (RFC 5965) ---------------------------------------------------------------


def _complaints(msg: Message) -> list[Bounce]:
    fields = _feedback_fields(msg)
    kind = fields.get("feedback-type", "abuse").strip().lower() or "abuse"
    if kind not in _COMPLAINT_TYPES:
        return []
    original = _original_headers(msg)
    found = [
        a
        for key in ("original-rcpt-to", "removal-recipient")
        for value in fields.get_all(key, [])
        for a in _addresses(value)
    ]
    if not found and original is not None:
        found = [a for value in original.get_all("to", []) for a in _addresses(value)]
    reason = f"complaint: {kind}"
    agent = fields.get("user-agent", "").strip()
    if agent:
        reason += f" (reported by {_one_line(agent, 80)})"
    records = [
        Bounce(
            recipient=address,
            status="",
            hard=False,
            reason=reason,
            kind="complaint",
            category="complaint",
            feedback_type=kind,
            source="arf",
        )
        for address in dict.fromkeys(found)
    ]
    return _with_context(records, msg)


def _hotmail_complaints(msg: Message) -> list[Bounce]:
    """Read Outlook.com's JMRP reports: the complained-of mail with its recipient header."""
    original = _original_headers(msg)
    if original is None or not original.get("x-hmxmroriginalrecipient"):
        return []
    records = [
        Bounce(
            recipient=address,
            status="",
            hard=False,
            reason="complaint: abuse (Outlook.com junk mail reporting)",
            kind="complaint",
            category="complaint",
            feedback_type="abuse",
            source="jmrp",
        )
        for address in _addresses(str(original.get("x-hmxmroriginalrecipient")))[:1]
    ]
    return _with_context(records, msg)


def _feedback_fields(msg: Message) -> Message:
    part = _find_part(msg, "message/feedback-report")
    if part is None:
        return Message()
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    text = part.get_payload(decode=True)
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(payload)
    return email.message_from_string(body.lstrip(), policy=email.policy.compat32)


# --- Amazon SES notifications mailed by SNS (JSON) --------------------------------------


def _ses_notification(msg: Message) -> dict[str, Any] | None:
    """Return an SES bounce, complaint or delivery notification mailed as JSON, else None."""
    if msg.is_multipart():
        return None
    data = msg.get_payload(decode=True)
    text = data.decode("utf-8", "replace").lstrip() if isinstance(data, bytes) else ""
    if not text.startswith("{") or "Type" not in text[:2000]:
        return None
    text = re.sub(r"!\r?\n ", "", text)  # a relay's cut of an over-long line (RFC 5322 2.1.1)
    try:
        found, _ = json.JSONDecoder().raw_decode(text)
        if isinstance(found, dict) and isinstance(found.get("Message"), str):
            found = json.loads(found["Message"])  # the SNS envelope around it
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    kind = found.get("notificationType") or found.get("eventType")
    return found if kind in ("Bounce", "Complaint", "Delivery") else None


def _ses_records(notice: dict[str, Any]) -> list[Bounce]:
    kind = notice.get("notificationType") or notice.get("eventType")
    mail = notice.get("mail") if isinstance(notice.get("mail"), dict) else {}
    message_id = str(mail.get("commonHeaders", {}).get("messageId", "")) if mail else ""
    if kind == "Complaint":
        complaint = notice.get("complaint") or {}
        feedback = str(complaint.get("complaintFeedbackType") or "abuse").lower()
        return [
            Bounce(
                recipient=address,
                status="",
                hard=False,
                reason=f"complaint: {feedback} (Amazon SES)",
                kind="complaint",
                category="complaint",
                feedback_type=feedback,
                message_id=message_id,
                source="ses",
            )
            for item in complaint.get("complainedRecipients") or []
            for address in _addresses(str(item.get("emailAddress", "")))[:1]
        ]
    if kind != "Bounce":
        return []  # a delivery
    bounce = notice.get("bounce") or {}
    permanent = str(bounce.get("bounceType", "")) == "Permanent"
    records = []
    for item in bounce.get("bouncedRecipients") or []:
        for address in _addresses(str(item.get("emailAddress", "")))[:1]:
            text = _one_line(str(item.get("diagnosticCode", "")))
            text = re.sub(r"^\s*smtp\s*;\s*", "", text, flags=re.I)
            status = _status_in(str(item.get("status", ""))) or _status_in(text)
            if not status:
                status = "5.0.0" if permanent else "4.0.0"
            record = _decide(address, status, _reply_in(text), text, "ses")
            records.append(replace(record, message_id=message_id))
    return records


# --- RFC 3464 delivery status notifications ------------------------------------------------


def _delivery_status_parts(msg: Message) -> list[Message]:
    """Return the per-recipient field blocks of every delivery-status part."""
    blocks: list[Message] = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "text/delivery-status"):
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
            messages: list[Message] = [p for p in payload if isinstance(p, Message)]
            if len(messages) == 1:  # one unparsed block: the whole text in one "header"
                messages = _field_blocks(messages[0].as_string())
        else:
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
            messages = _field_blocks(text)
        blocks.extend(m for m in messages if m.get("final-recipient") or m.get("action"))
    return blocks


def _field_blocks(text: str) -> list[Message]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [
        email.message_from_string(block.strip("\n") + "\n", policy=email.policy.compat32)
        for block in re.split(r"\n[ \t]*\n", text)
        if block.strip()
    ]


def _only_not_failed(blocks: list[Message]) -> bool:
    actions = {str(b.get("action", "")).strip().lower() for b in blocks}
    return bool(actions) and not actions & (_FAILED_ACTIONS | {""})


def _dsn_records(blocks: list[Message], msg: Message) -> list[Bounce]:
    records = []
    text = ""
    for block in blocks:
        action = str(block.get("action", "")).strip().lower()
        if action and action not in _FAILED_ACTIONS:
            continue
        recipient = _dsn_recipient(block)
        if not recipient:
            continue
        diagnostic = _one_line(str(block.get("diagnostic-code", "")))
        diagnostic = re.sub(r"^\s*(smtp|x-[\w-]+|[\w-]+)\s*;\s*", "", diagnostic, flags=re.I)
        if not diagnostic:  # Sendmail's report leaves it out: its text part says it
            text = text or _failure_text(msg)
            diagnostic = _diagnostic_for(recipient, text)
        status = _status_in(str(block.get("status", "")))
        hint = _status_in(diagnostic)
        if hint and (not status or (status.endswith(".0.0") and hint[0] == status[0])):
            status = hint  # "Status: 5.0.0" with "550 5.1.1 user unknown" in the text
        reply = _reply_in(diagnostic)
        if not status and not action and not reply:
            continue  # a block that says nothing failed
        records.append(_decide(recipient, status, reply, diagnostic, "dsn"))
    return records


def _dsn_recipient(block: Message) -> str:
    for key in ("original-recipient", "final-recipient", "x-actual-recipient"):
        value = str(block.get(key, ""))
        value = value.split(";", 1)[1] if ";" in value else value
        found = _addresses(value)
        if found:
            return found[0]
    return ""


# --- everything else: flufl.bounce finds the addresses, we read the words ---------------

_BOUNCE_FROM = re.compile(
    r"mailer-daemon|postmaster|mail delivery (sub)?system|mail ?administrator|"
    r"microsoftexchange|mdaemon|no-?reply@.*(bounce|delivery)|bounce",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed|problem)|"
    r"returned mail|failure notice|mail delivery failed|could not be delivered|"
    r"non[- ]?delivery|delivery report|nondeliverable|rejected|mail system error|"
    r"warning: could not send|message not delivered|unzustellbar|"
    r"^\s*(fw|fwd)?:?\s*bounce",
    re.I,
)
_FAILURE_WORDS = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't delivered|was not delivered|"
    r"delivery (to the following recipients? )?(has )?failed|permanent (error|failure)|"
    r"undeliverable|unable to deliver|this is the mail system at host|"
    r"recipient address rejected|user unknown|no such user|delivery status notification|"
    r"message could not be sent|the following addresses? (had|failed)|"
    r"i'm afraid i wasn't able to deliver|mailbox unavailable",
    re.I,
)
_DELAY_SUBJECT = re.compile(
    r"delayed|\(delay\)|delivery delay|could not send message for past|still being retried|"
    r"warning: message .* delayed",
    re.I,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response|antwort)|"
    r"^\s*auto:|vacation|abwesenheit|away from (my|the) (desk|office)|on leave|"
    r"r[ée]ponse automatique|absence",
    re.I,
)


def _looks_like_bounce(msg: Message) -> bool:
    sender = str(msg.get("from", "")) + " " + str(msg.get("return-path", ""))
    subject = _one_line(_decoded(msg.get("subject", "")))
    auto = str(msg.get("auto-submitted", "")).lower()
    if _AUTO_REPLY_SUBJECT.search(subject) or msg.get("x-autoreply") or msg.get("x-autorespond"):
        return False
    if "auto-replied" in auto and not _BOUNCE_FROM.search(sender):
        return False  # RFC 3834 auto-reply; bounces say auto-replied too, from the daemon
    if str(msg.get("precedence", "")).lower() in ("auto_reply",):
        return False
    if _BOUNCE_FROM.search(sender) or _BOUNCE_SUBJECT.search(subject):
        return True
    return bool(_FAILURE_WORDS.search(_failure_text(msg)[:20_000]))


def _text_records(msg: Message) -> list[Bounce]:
    text = _failure_text(msg)
    found, detector = _flufl(msg)
    ignore = _own_addresses(msg)
    if found:
        addresses = [a for a in found if a not in ignore] or found
    else:
        detector = "text"
        addresses = [a for a in _failed_in_text(text) if a not in ignore]
        if not addresses:
            original = _original_headers(msg)
            if original is not None:
                addresses = [a for v in original.get_all("to", []) for a in _addresses(v)]
    records = []
    unique = list(dict.fromkeys(addresses))
    for address in unique:
        diagnostic = _diagnostic_for(address, text)
        status, reply = _status_in(diagnostic), _reply_in(diagnostic)
        if len(unique) == 1:  # the text's one code is this address's; with more, it may not be
            status, reply = status or _status_in(text), reply or _reply_in(text)
        records.append(_decide(address, status, reply, diagnostic or _summary(text), detector))
    return records


def _flufl(msg: Message) -> tuple[list[str], str]:
    """Return the addresses flufl.bounce's first matching detector finds, and its name.

    Its detectors are run one by one, as its ``all_failures`` does, to name the one that
    found them and to go on past one that raises; a version without the list is asked
    through ``all_failures``.
    """
    detectors = getattr(_scan, "_DETECTORS", None)
    if detectors is None:
        try:
            temporary, permanent = _scan.all_failures(msg)
        except Exception:  # its heuristics fail on odd mail: our own reading remains
            return [], "text"
        found = sorted({a for a in map(_decode_address, (*permanent, *temporary)) if a})
        return found, "flufl.bounce" if found else "text"
    for detector in detectors:
        try:
            temporary, permanent = detector().process(msg)
        except Exception:  # its heuristics fail on odd mail; the next detector may not
            continue
        found = [_decode_address(a) for a in (*permanent, *temporary)]
        found = [a for a in found if a]
        if found:
            return sorted(set(found)), f"flufl.bounce:{detector.__name__}"
        if temporary or permanent:
            break
    return [], "text"


def _decode_address(value: Any) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    found = _addresses(text)
    return found[0] if found else ""


_ORIGINAL_START = re.compile(
    r"^\s*(-{2,}|={2,}|\*{2,})?\s*("
    r"(original|returned|undelivered|undeliverable) message|"
    r"(this is a |a )?copy of (the|your) (original )?message|"
    r"below this line is a copy|the (original )?message headers? follows?|"
    r"original message (headers )?follows|message headers follow|"
    r"forwarded message|the header of the original message|"
    r"unsent message below|headers of your message)",
    re.I | re.MULTILINE,
)


def _failure_text(msg: Message) -> str:
    """Return the human-readable text of a bounce, without the returned message."""
    texts: list[str] = []
    html: list[str] = []
    for part in _walk_outer(msg):
        kind = part.get_content_type()
        if kind not in ("text/plain", "text/html"):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            body = data.decode(charset, "replace")
        except LookupError:
            body = data.decode("utf-8", "replace")
        (texts if kind == "text/plain" else html).append(body)
    text = "\n".join(texts) if texts else _strip_html("\n".join(html))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cut = _ORIGINAL_START.search(text)
    if cut and cut.start() > 0:
        text = text[: cut.start()]
    return text


def _walk_outer(msg: Message) -> Iterator[Message]:
    """Yield the parts of a mail, not descending into a returned message."""
    if msg.is_multipart():
        payload = msg.get_payload()
        if msg.get_content_type() == "message/rfc822":
            return
        for part in payload if isinstance(payload, list) else []:
            if isinstance(part, Message):
                yield from _walk_outer(part)
    else:
        yield msg


def _strip_html(html: str) -> str:
    html = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", html)
    html = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", html)
    text = re.sub(r"<[^>]+>", " ", html)
    import html as html_module

    return html_module.unescape(text)


_NEAR_FAILURE = re.compile(
    r"unknown|not exist|no such|not found|invalid|rejected|failed|undeliver|unavailable|"
    r"disabled|full|quota|refused|denied|error|permanent|blocked|expired|\b[45]\d\d\b",
    re.I,
)


def _failed_in_text(text: str) -> list[str]:
    """Return the addresses on or right before a line that speaks of a failure."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        addresses = _addresses(line)
        if not addresses:
            continue
        window = " ".join(lines[i : i + 3])
        if _NEAR_FAILURE.search(window):
            found.extend(addresses)
    return list(dict.fromkeys(found))


def _diagnostic_for(address: str, text: str) -> str:
    """Return the words a server gave about one address: its line and what follows."""
    lines = [line.strip() for line in text.split("\n")]
    lower = address.lower()
    best = ""
    for i, line in enumerate(lines):
        if lower not in line.lower():
            continue
        chunk = [line]
        for following in lines[i + 1 : i + 6]:
            if not following or (_addresses(following) and lower not in following.lower()):
                break
            chunk.append(following)
        candidate = " ".join(chunk)
        if not best or (_NEAR_FAILURE.search(candidate) and len(candidate) > len(best)):
            best = candidate
    return _one_line(best, 1000)


def _summary(text: str) -> str:
    for line in text.split("\n"):
        if _NEAR_FAILURE.search(line) and len(line.strip()) > 10:
            return _one_line(line)
    return ""


# --- the decision -----------------------------------------------------------------------

# (category, pattern): the first that matches the server's words wins; see the table above.
_TEXT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.I))
    for name, pattern in (
        (
            "rate-limit",
            r"too many (messages|connections|recipients|emails)|rate limit|rate-limit|"
            r"exceeded (the )?(message )?rate|sending rate|try again later|"
            r"temporarily deferred|receiving mail at a rate|unusual rate",
        ),
        (
            "policy",
            r"\bspam\b|blocked|block ?list|black ?list|\bdnsbl\b|\brbl\b|spamhaus|"
            r"reputation|\bdmarc\b|\bspf\b|\bdkim\b|not authori[sz]ed|policy|"
            r"relay(ing)? (access )?(denied|not permitted|prohibited)|"
            r"unsolicited|content rejected|junk|bulk mail|listed|poor reputation|"
            r"access denied|\bptr\b|reverse (dns|lookup)|tls required|"
            r"sender (address )?rejected|sender verify failed|refused by",
        ),
        (
            "mailbox-full",
            r"mailbox (is )?full|quota|over ?quota|insufficient (disk|storage|system storage)|"
            r"mail ?box has exceeded|exceeded storage|storage (allocation|limit)|"
            r"mailbox size limit|full mailbox|out of storage|not enough (space|storage)",
        ),
        (
            "too-large",
            r"message (is )?too (large|big)|size (limit|exceeds)|exceeds .*size|"
            r"message length exceeds|message size|too large",
        ),
        (
            "disabled",
            r"account (has been |is |was )?(disabled|suspended|deactivated|inactive|locked|"
            r"blocked|closed|expired)|(disabled|suspended|inactive|closed|deactivated) "
            r"(account|mailbox|user)|mailbox (is )?(disabled|inactive|suspended)|"
            r"user (is )?(disabled|suspended|inactive)|not (currently )?active|"
            r"temporarily (disabled|unavailable)|"
            r"account[^.;:]{0,40}\b(is|has been) (disabled|suspended|deactivated|inactive)|"
            r"disabled (recipient|address)",
        ),
        ("moved", r"has moved|no longer (at|with|employed)|changed (his|her|their) address"),
        (  # a DNS answer that may be different next time is not an unknown domain
            "network",
            r"host not found, try again|malformed or unexpected name server reply|servfail|"
            r"temporary (dns|lookup|name resolution) failure|name server timeout|"
            r"dns (lookup )?timed out",
        ),
        (
            "host-unknown",
            r"host (or domain name )?(not found|unknown)|domain (not found|does not exist|"
            r"unknown|name not found)|no such domain|unrouteable|unroutable|"
            r"name service error|nxdomain|no mx|null mx|mx (record|lookup)|"
            r"host not found|unknown host|domain (is )?(invalid|not exist)|no such host|"
            r"does not accept mail|dns (error|lookup failed)|name or service not known|"
            r"invalid domain|(couldn't|could not|unable to) find a mail exchanger|"
            r"indicated no smtp service|"
            r"(?<![@\w.-])[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,} does not exist",
        ),
        (
            "user-unknown",
            r"user(name)? unknown|unknown (user|recipient|mailbox|address|local ?part)|"
            r"no such (user|mailbox|recipient|address|person|account)|"
            r"(mailbox|user|recipient|address|account|addressee)[^.;:]{0,40}"
            r"(does not|doesn't|did not|not) exist|"
            r"(mailbox|user|recipient|address|account)( name)? (not found|invalid|unavailable|"
            r"is unavailable|not available|is not valid|not valid|unknown)|"
            r"invalid (recipient|mailbox|user|address)|not a valid (user|mailbox|recipient)|"
            r"recipient address rejected: (invalid|unknown|no such|not found|bad)|"
            r"bad (destination|recipient|address)|address (couldn't|could not) be found|"
            r"no (mailbox|account) (here|by that name)|not (a )?known user|"
            r"recipient not (ok|found|exist)|is not a valid|not listed in|"
            r"no longer (valid|available|in use|accepts mail)|"
            r"resolver\.adr\.recipientnotfound|recipnotfound|"
            r"mailbox unavailable|no one at this address|not our customer|"
            r"account that you tried to reach does not exist|"
            r"unknown or illegal alias|user not local|invalid address|"
            r"(user|recipient) (doesn't|does not) have an? [^;:]{0,40}account|"
            r"\bdoes not exist|\bdoesn't exist|invalid [^.;:]{0,20}userid|"
            r"recipient address rejected\.(\s|$)",
        ),
        (
            "expired",
            r"retry time(out)? (not reached|exceeded)|delivery time expired|"
            r"(message|delivery) (has )?expired|too long in queue|gave up|timeout exceeded|"
            r"could not be delivered (with)?in|has been delayed|"
            r"was not delivered for \d+|queue(d)? too long",
        ),
        (
            "network",
            r"connection (refused|timed out|reset|lost)|timed out|no route to host|"
            r"network (is )?unreachable|could not connect|lost connection|unable to connect",
        ),
    )
)

# Which user-unknown wordings also win over a policy or spam word on the same line.
_STRONG_UNKNOWN = re.compile(
    r"user(name)? unknown|unknown user|no such (user|mailbox)|(mailbox|user|recipient) "
    r"(does not|doesn't) exist|(user|recipient|mailbox) not found|invalid (recipient|mailbox)|"
    r"recipient address rejected: access denied",  # Microsoft's word for an unknown user
    re.I,
)

_HARD = {"user-unknown", "host-unknown", "moved"}

# (class-less) RFC 3463 detail -> category; "" in the subject means any detail.
_STATUS_RULES: dict[str, str] = {
    "1.1": "user-unknown",
    "1.2": "host-unknown",
    "1.3": "user-unknown",
    "1.6": "moved",
    "1.7": "sender",
    "1.8": "sender",
    "1.10": "host-unknown",
    "2.1": "user-unknown",
    "2.2": "mailbox-full",
    "2.3": "too-large",
    "3.4": "too-large",
    "4.7": "expired",
    "7.13": "disabled",
    "7.17": "moved",
    "7.18": "host-unknown",
}
_SUBJECT_RULES = {"3": "system", "4": "network", "6": "content", "7": "policy"}

_DEFAULT_STATUS = {
    "user-unknown": "1.1",
    "host-unknown": "1.2",
    "moved": "1.6",
    "mailbox-full": "2.2",
    "too-large": "3.4",
    "disabled": "2.1",
    "policy": "7.1",
    "rate-limit": "7.0",
    "sender": "1.8",
    "expired": "4.7",
    "network": "4.0",
    "system": "3.0",
    "content": "6.0",
    "other": "0.0",
}


def categorize(status: str, text: str) -> str:
    """Return the category of a failure from the server's words, else its status code."""
    by_text = ""
    for name, pattern in _TEXT_RULES:
        if pattern.search(text):
            by_text = name
            break
    if by_text in ("policy", "rate-limit", "disabled") and _STRONG_UNKNOWN.search(text):
        by_text = "user-unknown"  # "550 5.7.1 ... user unknown": the address, not our mail
    by_status = _status_category(status)
    if by_status == "sender":  # 5.1.7 / 5.1.8: about our sender address, whatever the words
        return by_status
    if by_text == "user-unknown" and by_status in ("too-large", "mailbox-full"):
        return by_status  # e.g. "5.1.8 sender address rejected"
    if by_text == "policy" and by_status in _HARD and not status.endswith(".0.0"):
        # "5.1.1 ... blocked by policy" is rare; trust the detailed code for the address
        return by_status
    return by_text or by_status


def _status_category(status: str) -> str:
    if not status:
        return ""
    _, subject, detail = status.split(".")
    rule = _STATUS_RULES.get(f"{subject}.{detail}")
    if rule:
        return rule
    if status[0] == "4" and subject == "2":
        return "mailbox-full"
    return _SUBJECT_RULES.get(subject, "other" if subject != "0" else "")


def is_hard(category: str, status: str, text: str) -> bool:
    """Say whether the address itself is permanently bad."""
    if category not in _HARD:
        return False
    if status.startswith("4"):  # a temporary answer: hard only if the words say so
        return category == "user-unknown" and bool(_STRONG_UNKNOWN.search(text))
    return True


def _decide(recipient: str, status: str, reply: str, text: str, source: str) -> Bounce:
    category = categorize(status, text) or "other"
    klass = status[:1] or reply[:1] or ("4" if category in ("expired", "rate-limit") else "5")
    if not status:  # the server gave none: the category's (a server's own is kept)
        status = f"{klass}.{_DEFAULT_STATUS[category]}"
    return Bounce(
        recipient=recipient,
        status=status,
        hard=is_hard(category, status, text),
        reason=_one_line(text) or f"{status} ({category})",
        category=category,
        smtp_code=reply,
        source=source,
    )


# --- context: which mail bounced --------------------------------------------------------


def _with_context(records: list[Bounce], msg: Message) -> list[Bounce]:
    """Add which mail bounced (Message-ID, List-Id, VERP token); one record per address."""
    message_id, list_id, verp = _context(msg)
    unique: dict[tuple[str, str], Bounce] = {}
    for r in records:
        r = replace(r, message_id=message_id or r.message_id, list_id=list_id, verp=verp)
        unique.setdefault((r.kind, r.recipient), r)
    return list(unique.values())


def _context(msg: Message) -> tuple[str, str, str]:
    original = _original_headers(msg)
    message_id = list_id = ""
    if original is not None:
        message_id = _one_line(str(original.get("message-id", "")), 250)
        list_id = _one_line(str(original.get("list-id", "")), 250)
    if not message_id:
        quoted = re.search(r"(?im)^\s*message-id:\s*(<[^>\s]+>)", _body_text(msg))
        message_id = quoted.group(1) if quoted else ""
    return message_id, list_id, _verp(msg)


def _verp(msg: Message) -> str:
    for key in ("x-original-to", "delivered-to", "envelope-to", "to"):
        for value in msg.get_all(key, []):
            for address in _addresses(str(value)):
                local = address.split("@", 1)[0]
                if "+" in local:
                    return local.split("+", 1)[1]
    return ""


def _original_headers(msg: Message) -> Message | None:
    """Return the headers of the returned message, where the bounce includes them."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind in ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header"):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return email.message_from_bytes(data.lstrip(), policy=email.policy.compat32)
    return None


def _body_text(msg: Message) -> str:
    chunks = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            chunks.append(data[:200_000].decode("utf-8", "replace"))
    return "\n".join(chunks)


def _own_addresses(msg: Message) -> set[str]:
    """Return addresses of the bounce itself (daemon, us) that are never the failed one."""
    own = set()
    # not Delivered-To / X-Original-To: relays copy the failed recipient into them
    for key in ("from", "to", "return-path", "sender"):
        for value in msg.get_all(key, []):
            own.update(_addresses(str(value)))
    return own


# --- small helpers ----------------------------------------------------------------------


def _report_type(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "multipart/report":
            return str(part.get_param("report-type", "") or "").lower()
    return ""


def _find_part(msg: Message, kind: str) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == kind:
            return part
    return None


def _addresses(text: str) -> list[str]:
    return [m.group(1).lower().strip(".") for m in _ADDRESS.finditer(text)]


def _status_in(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def _reply_in(text: str) -> str:
    match = _REPLY.search(text)
    return match.group(1) if match else ""


def _decoded(value: Any) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return str(value)


def _one_line(text: str, limit: int = _REASON_CHARS) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
