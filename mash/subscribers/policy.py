"""The bounce policy (#16), pure: what one bounce or complaint does to an address.

- A complaint: ``complained`` at once, whatever the status was (the reader's word that
  the mail is unwanted outweighs every other).
- A hard bounce (the address is bad: unknown user or domain, moved): ``bounced`` at once.
- A soft bounce (mailbox full, policy block, a server down ...): ``bounced`` once the
  address soft-bounced on ``limit`` consecutive issues sent to it (3 by default); one
  issue delivered in between starts the count again.

Only ``pending`` and ``subscribed`` addresses become ``bounced``: an unsubscribed one
keeps the status that says the reader left. The reason names the issue and the
server's words, e.g. "hard bounce 5.1.1 on the 2026-11 issue: user unknown".
"""

from __future__ import annotations

from dataclasses import dataclass

from mash.records import Bounce
from mash.subscribers import BOUNCED, COMPLAINED, PENDING, STATUSES, SUBSCRIBED

HARD = "hard"
SOFT = "soft"
COMPLAINT = "complaint"
_BOUNCING = frozenset({PENDING, SUBSCRIBED})
_REASON_CHARS = 200


@dataclass(frozen=True)
class Verdict:
    """A status change the policy asks for: the new status, the statuses it may change
    from, and why."""

    status: str
    only_from: frozenset[str]
    reason: str


def bounce_kind(bounce: Bounce) -> str:
    """Return hard, soft or complaint for a parsed bounce."""
    if bounce.kind == "complaint":
        return COMPLAINT
    return HARD if bounce.hard else SOFT


def decide(
    kind: str, status: str, month: str, detail: str, streak: tuple[str, ...], limit: int
) -> Verdict | None:
    """Return the change one bounce asks for, or None (a soft bounce under the limit).

    ``streak``: the months of the consecutive latest issues that soft-bounced, newest
    first, this bounce's included.
    """
    issue = f" on the {month} issue" if month else ""
    words = f": {detail[:_REASON_CHARS]}" if detail else ""
    if kind == COMPLAINT:
        label = f" ({detail})" if detail else ""
        return Verdict(COMPLAINED, frozenset(STATUSES), f"complaint{label}{issue}")
    if kind == HARD:
        return Verdict(BOUNCED, _BOUNCING, f"hard bounce {status or '5.0.0'}{issue}{words}")
    if len(streak) < limit:
        return None
    months = ", ".join(reversed(streak[:limit]))
    return Verdict(
        BOUNCED,
        _BOUNCING,
        f"soft bounces on {limit} consecutive issues ({months}), the last {status or '4.0.0'}"
        f"{words}",
    )
