"""Admission decisions: the answer the platform gets for every entry (G15).

A decision is data, never an exception: a refusal of entry is an answer
(`admitted=False` with a stable reason code and a human message), not an
error.  The functions here are pure; the service layer loads the state,
asks, and writes what the answer says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from farebox.catalog.domain import Plan, Policy
from farebox.kernel import reasons


class Mode(StrEnum):
    """How an attendee enters an occurrence's room (L1): every mode counts the same."""

    EARLY = "early"
    LIVE = "live"
    REPLAY = "replay"
    ON_DEMAND = "on_demand"

    @property
    def is_live(self) -> bool:
        """Early and live entries need the room open; replay and on demand do not (S6)."""
        return self in (Mode.EARLY, Mode.LIVE)


class Role(StrEnum):
    ATTENDEE = "attendee"
    MEMBER = "member"  # the tenant's own team: never counted (G5)
    COHOST = "cohost"  # never counted, needs no seat (S2, S4)

    @property
    def is_billable(self) -> bool:
        return self is Role.ATTENDEE


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to a start, join, leave, register or message.

    `warnings` are the texts and `warning_codes` their stable codes, in the same order (G15).
    `started` says that this very call opened the occurrence (its first entry starts S6's clock)."""

    admitted: bool
    counted: bool
    reason: str
    message: str
    warnings: tuple[str, ...] = ()
    position: int | None = None  # place in the waiting room (S5 hard_with_waiting_room)
    deadline: datetime | None = None  # when the occurrence must end (S6)
    details: dict[str, Any] = field(default_factory=dict)
    warning_codes: tuple[str, ...] = ()
    started: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "admitted": self.admitted,
            "counted": self.counted,
            "reason": self.reason,
            "message": self.message,
            "warnings": list(self.warnings),
            "warning_codes": list(self.warning_codes),
            "position": self.position,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        deadline = data.get("deadline")
        return cls(
            admitted=data["admitted"],
            counted=data["counted"],
            reason=data["reason"],
            message=data["message"],
            warnings=tuple(data.get("warnings") or ()),
            position=data.get("position"),
            deadline=datetime.fromisoformat(deadline) if deadline else None,
            warning_codes=tuple(data.get("warning_codes") or ()),
            started=bool(data.get("started", False)),
        )


@dataclass(frozen=True, slots=True)
class Warning:
    """A warning on an admitted answer: a stable code and its text (G15)."""

    code: str
    text: str

    @classmethod
    def of(cls, reason: reasons.Reason, **params: Any) -> Warning:
        return cls(reason.code, reason.message(**params))


def admit(
    reason: reasons.Reason = reasons.ADMITTED,
    *,
    counted: bool,
    warnings: tuple[Warning, ...] = (),
    deadline: datetime | None = None,
    **params: Any,
) -> Decision:
    texts, codes = tuple(w.text for w in warnings), tuple(w.code for w in warnings)
    return Decision(True, counted, reason.code, reason.message(**params), texts, None, deadline, warning_codes=codes)


def refuse(
    reason: reasons.Reason, *, position: int | None = None, deadline: datetime | None = None, **params: Any
) -> Decision:
    if position is not None:
        params["position"] = position
    return Decision(False, False, reason.code, reason.message(**params), (), position, deadline)


def answer(reason: reasons.Reason, *, deadline: datetime | None = None, **params: Any) -> Decision:
    """An answer that neither admits nor refuses entry (`left`, the end of an occurrence)."""
    return Decision(False, False, reason.code, reason.message(**params), (), None, deadline)


# --- S6: how long an occurrence may last --------------------------------------


def deadline_for(started_at: datetime, event_duration: timedelta | None) -> datetime | None:
    """The instant an occurrence must end: its first entry plus the plan's event length (S6)."""
    return started_at + event_duration if event_duration is not None else None


def past_deadline(deadline: datetime | None, now: datetime) -> bool:
    return deadline is not None and now >= deadline


# --- S5: per-occurrence caps ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapCheck:
    """What a per-occurrence cap says about one more person."""

    allowed: bool
    over: bool  # allowed beyond the cap (soft or overage): the host is told


def check_cap(count: int, included: int | None, policy: Policy) -> CapCheck:
    """One more unit on top of `count` under a cap of `included` (S5, L7); a waiting room is `seat_in_room`'s."""
    if included is None or count < included:
        return CapCheck(True, False)
    if policy in (Policy.SOFT, Policy.OVERAGE):
        return CapCheck(True, True)
    return CapCheck(False, False)


# --- S5: the waiting room (hard_with_waiting_room) --------------------------------

WAITING_TICKET_TTL = timedelta(minutes=2)
"""A waiting-room ticket not re-presented (joined again) within this time loses its place:
people who give up without a `leave` never block the queue for longer than this."""


def ticket_live(presented_at: datetime | None, now: datetime) -> bool:
    """A ticket keeps its place while its holder re-presents it within `WAITING_TICKET_TTL`."""
    return presented_at is not None and now - presented_at < WAITING_TICKET_TTL


def may_take_seat(waiting_ahead: int, present: int, included: int) -> bool:
    """S5: a seat is free for this person when fewer live tickets wait ahead of them than there are free seats."""
    return waiting_ahead < included - present


# --- S2: hosts and co-hosts -------------------------------------------------------

COHOSTS = "cohosts"


def host_refusal(
    plan: Plan, role: Role, *, hosts: int, already_hosting: bool
) -> tuple[reasons.Reason, dict[str, Any]] | None:
    """S2: a co-host needs a plan with the `cohosts` feature; a member hosting takes one of the
    plan's seats (`seats`: None is unlimited), so no more members host an occurrence at once."""
    if role is Role.COHOST and not plan.has_feature(COHOSTS):
        return reasons.COHOSTS_NOT_AVAILABLE, {}
    if role is Role.MEMBER and not already_hosting and plan.seats is not None and hosts >= plan.seats:
        return reasons.HOST_SEATS_FULL, {"seats": plan.seats}
    return None


def entitlement(plan: Plan, feature: str) -> Decision:
    """May a tenant on this plan use this feature (S2, L5)?  Admitted or refused with a reason."""
    if plan.has_feature(feature):
        return admit(reasons.FEATURE_AVAILABLE, counted=False, feature=feature)
    return refuse(reasons.FEATURE_NOT_AVAILABLE, feature=feature)


def upgrade_required(peak: int | None, included: int | None) -> bool:
    """S5 (soft): after an occurrence went over, new occurrences wait for a plan whose cap covers that peak."""
    return peak is not None and included is not None and included < peak


def upgrade_covers_peak(plan: Plan, meter: str | None, peak: int) -> bool:
    """S5: a plan lifts `upgrade_required` only if its cap on the meter that went over covers the peak
    (a plan with no cap on that meter covers any peak)."""
    limit = plan.limit(meter or "")
    return not upgrade_required(peak, limit.included if limit else None)
