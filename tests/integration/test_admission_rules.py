"""Admission rules kept to the letter: G3 causes, G15 warning codes, D16 occurrence answers, F3 waiting room."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from farebox.kernel import reasons
from farebox.kernel.access import SYSTEM
from farebox.kernel.reasons import DomainError
from farebox.metering.domain.admission import WAITING_TICKET_TTL
from farebox.metering.services import admission, ingestion, usage
from farebox.storage.tables.metering import usage_records

from factories import make_tenant
from metering_support import shrink


def _causes(fb, tenant_id: str) -> list[tuple[str, str, str | None, str]]:
    r = usage_records.c
    with fb.uow(readonly=True) as uow:
        rows = uow.conn.execute(
            select(r.meter, r.subject, r.person_id, r.cause).where(r.tenant_id == tenant_id).order_by(r.at, r.subject)
        )
        return [tuple(row) for row in rows]


def test_G3_T5_every_counted_unit_records_the_request_or_event_that_caused_it(fb, clock):
    make_tenant(fb, tenant_id="g3", catalog="attendee-credits", plan="pro")
    admission.join(fb, SYSTEM, "g3", "o1", "ann", mode="replay")
    clock.advance(timedelta(seconds=1))
    ingestion.ingest(
        fb,
        SYSTEM,
        "g3",
        [
            {
                "id": "e-7",
                "source": "logs",
                "type": "attendee.joined",
                "time": clock.now().isoformat(),
                "data": {"occurrence_id": "o2", "person_id": "bob"},
            },
        ],
    )
    assert _causes(fb, "g3") == [
        ("credits", "occurrence:o1", "ann", "join o1 ann replay by operator:system"),
        ("credits", "occurrence:o2", "bob", "event logs/e-7"),
    ]
    make_tenant(fb, tenant_id="g3a", catalog="agent-sessions", plan="sme")
    admission.message(fb, SYSTEM, "g3a", "c1", sender="customer")
    assert _causes(fb, "g3a") == [("sessions", "conversation:c1", None, "message c1 from customer by operator:system")]


def test_G15_warnings_carry_stable_registered_codes_beside_their_text(fb):
    make_tenant(fb, tenant_id="wc", catalog="agent-sessions", plan="sme")
    usage.set_session_limit(fb, SYSTEM, "wc", 5)
    answers = [admission.message(fb, SYSTEM, "wc", f"c{i}", sender="customer") for i in range(5)]
    assert (answers[3].warning_codes, answers[3].warnings) == (
        ("session_limit_almost_reached",),
        ("Session limit almost reached",),
    )
    assert (answers[4].warning_codes, answers[4].warnings) == (
        ("session_limit_now_reached",),
        ("Session limit has been reached",),
    )
    make_tenant(fb, tenant_id="ws", catalog="session-caps", plan="pro")
    shrink(fb, "ws", "attendees", 1)
    over = [admission.join(fb, SYSTEM, "ws", "o1", p) for p in ("a", "b")][1]
    assert over.warning_codes == ("over_attendee_limit",)
    assert over.warnings == (reasons.OVER_ATTENDEE_LIMIT.message(limit=1),)
    assert over.as_dict()["warning_codes"] == ["over_attendee_limit"]
    for code in answers[3].warning_codes + answers[4].warning_codes + over.warning_codes:
        assert code in reasons.REGISTRY


def test_D16_leave_on_an_unknown_occurrence_is_not_found_like_end(fb):
    make_tenant(fb, tenant_id="d16", catalog="session-caps", plan="pro")
    for call in (
        lambda: admission.leave(fb, SYSTEM, "d16", "nope", "a"),
        lambda: admission.end_occurrence(fb, SYSTEM, "d16", "nope"),
    ):
        with pytest.raises(DomainError) as err:
            call()
        assert err.value.code == "not_found"
    admission.start_occurrence(fb, SYSTEM, "d16", "o1")
    assert (
        admission.leave(fb, SYSTEM, "d16", "o1", "never-came").reason == "left"
    )  # a known occurrence: nothing to undo


def test_D16_a_join_that_opens_the_occurrence_says_so(fb):
    make_tenant(fb, tenant_id="d16s", catalog="session-caps", plan="pro")
    first = admission.join(fb, SYSTEM, "d16s", "o1", "a")
    second = admission.join(fb, SYSTEM, "d16s", "o1", "b")
    assert (first.admitted, first.counted, first.started, first.as_dict()["started"]) == (True, True, True, True)
    assert first.deadline is not None and second.started is False
    assert admission.start_occurrence(fb, SYSTEM, "d16s", "o2").started is True
    assert admission.start_occurrence(fb, SYSTEM, "d16s", "o2").started is False


def test_F3_abandoned_waiting_room_tickets_lose_their_place(fb, clock):
    """F3: 40 seats, 40 inside, 40 queue then walk away, the room empties: a newcomer gets in once the
    abandoned tickets are older than WAITING_TICKET_TTL; nobody is ever let past the cap."""
    make_tenant(fb, tenant_id="f3", catalog="session-caps", plan="pro")
    shrink(fb, "f3", "attendees", 40, policy="hard_with_waiting_room")
    assert all(admission.join(fb, SYSTEM, "f3", "r", f"a{i}").admitted for i in range(40))
    queued = [admission.join(fb, SYSTEM, "f3", "r", f"w{i}") for i in range(40)]
    assert [q.position for q in queued] == list(range(1, 41))
    for i in range(40):
        admission.leave(fb, SYSTEM, "f3", "r", f"a{i}")
    newcomer = admission.join(fb, SYSTEM, "f3", "r", "x")
    assert (newcomer.reason, newcomer.position) == ("waiting_room", 41)  # the tickets are still live
    clock.advance(WAITING_TICKET_TTL / 2)
    assert admission.join(fb, SYSTEM, "f3", "r", "w5").admitted  # a queued person who comes back gets in
    clock.advance(WAITING_TICKET_TTL / 2 + timedelta(seconds=1))
    assert admission.join(fb, SYSTEM, "f3", "r", "x").admitted  # the abandoned tickets (and x's) expired
    assert admission.join(
        fb, SYSTEM, "f3", "r", "w0"
    ).admitted  # w0 comes back late: re-queued at the tail, a seat is free


def test_F3_churn_of_joins_leaves_and_abandons_never_starves_and_never_passes_the_cap(fb, clock):
    make_tenant(fb, tenant_id="f3c", catalog="session-caps", plan="pro")
    shrink(fb, "f3c", "attendees", 5, policy="hard_with_waiting_room")
    inside: set[str] = set()
    n = 0
    for round_ in range(6):
        for _ in range(8):  # newcomers: some get in, the rest queue and never come back
            d = admission.join(fb, SYSTEM, "f3c", "room", f"p{n}")
            if d.admitted:
                inside.add(f"p{n}")
            n += 1
        for person in sorted(inside)[:3]:
            admission.leave(fb, SYSTEM, "f3c", "room", person)
            inside.discard(person)
        assert len(inside) <= 5
        clock.advance(WAITING_TICKET_TTL + timedelta(seconds=1))
        fresh = admission.join(fb, SYSTEM, "f3c", "room", f"fresh{round_}")
        assert fresh.admitted, f"round {round_}: {fresh.message}"  # free seats and only dead tickets ahead
        inside.add(f"fresh{round_}")
    assert usage.verify(fb, SYSTEM) == []
