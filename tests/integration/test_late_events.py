"""Late and out-of-order events through ingestion (A1, S2, S5, D3): decided as things stood at their `time`,
without disturbing what came after them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission, ingestion, usage
from farebox.subscriptions.services import subscriptions

from factories import make_tenant
from metering_support import shrink
from support import START


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _message(event_id: str, conversation: str, at: datetime, sender: str = "customer") -> dict:
    return {
        "id": event_id, "source": "chat", "type": "conversation.message", "time": _iso(at),
        "data": {"conversation_id": conversation, "from": sender},
    }


def _attendee(kind: str, event_id: str, occurrence: str, person: str, at: datetime, **data) -> dict:
    return {
        "id": event_id, "source": "logs", "type": f"attendee.{kind}", "time": _iso(at),
        "data": {"occurrence_id": occurrence, "person_id": person, **data},
    }


def _sessions(fb, tenant_id: str) -> int:
    return usage.usage_summary(fb, SYSTEM, tenant_id).meter("sessions").used


def test_A1_a_message_from_days_before_the_open_window_bills_its_own_window_and_leaves_the_open_one(fb, clock):
    """The late message opens (and bills) a window of its own, days before; the next message, inside the window
    that was open, is `window_open`: 2 billable sessions, not 3."""
    make_tenant(fb, tenant_id="a1late", catalog="agent-sessions", plan="playground")
    clock.advance(timedelta(days=10))
    now = START + timedelta(days=10)
    assert ingestion.ingest(fb, SYSTEM, "a1late", [_message("m1", "c1", now - timedelta(hours=1))]).counted == 1
    assert ingestion.ingest(fb, SYSTEM, "a1late", [_message("m0", "c1", now - timedelta(days=3))]).counted == 1
    inside = ingestion.ingest(fb, SYSTEM, "a1late", [_message("m2", "c1", now)])
    assert inside.results[0].decision["reason"] == "window_open", inside.results[0].decision
    assert _sessions(fb, "a1late") == 2
    assert usage.verify(fb, SYSTEM) == []


def test_A1_after_a_late_message_a_live_message_inside_the_open_window_is_not_billed_again(fb, clock):
    make_tenant(fb, tenant_id="a1live", catalog="agent-sessions", plan="playground")
    clock.advance(timedelta(days=10))
    now = START + timedelta(days=10)
    assert admission.message(fb, SYSTEM, "a1live", "c1", sender="customer").counted  # opens [now, now + 24 h)
    assert ingestion.ingest(fb, SYSTEM, "a1live", [_message("m0", "c1", now - timedelta(days=3))]).counted == 1
    clock.advance(timedelta(hours=1))
    again = admission.message(fb, SYSTEM, "a1live", "c1", sender="customer")
    assert (again.counted, again.reason) == (False, "window_open"), again
    assert _sessions(fb, "a1live") == 2


def test_A1_a_trial_batch_out_of_time_order_is_decided_in_time_order(fb, clock):
    """A trial goes one event at a time: [S+30h, S, S+31h] is S (opens), S+30h (opens the next), S+31h (inside
    it): 2 billable sessions, as the same messages in time order make."""
    make_tenant(fb, tenant_id="a1trial")
    subscriptions.subscribe(fb, SYSTEM, "a1trial", catalog="agent-sessions", plan="sme", trial=True, cause="t")
    clock.advance(timedelta(days=3))
    s = START + timedelta(hours=1)
    events = [
        _message("m2", "c1", s + timedelta(hours=30)),
        _message("m1", "c1", s),
        _message("m3", "c1", s + timedelta(hours=31)),
    ]
    report = ingestion.ingest(fb, SYSTEM, "a1trial", events)
    assert report.counted == 2, [r.decision for r in report.results]
    assert [r.id for r in report.results] == ["m2", "m1", "m3"]  # answered in the batch's order
    assert [r.decision["reason"] for r in report.results] == ["admitted", "admitted", "window_open"]


def test_S5_a_leave_listed_before_its_join_in_a_capped_room_leaves_the_room_empty(fb, clock):
    """A plan with a per-occurrence cap goes one event at a time: [left p1 10:05, joined p1 10:00] is decided in
    time order, so p1 has left and the next live join finds the room (cap 1, waiting room) empty."""
    make_tenant(fb, tenant_id="s5", catalog="session-caps", plan="pro")
    shrink(fb, "s5", "attendees", 1, policy="hard_with_waiting_room")
    clock.advance(timedelta(hours=2))
    t = START + timedelta(hours=1)
    report = ingestion.ingest(fb, SYSTEM, "s5", [
        _attendee("left", "e2", "o1", "p1", t + timedelta(minutes=5)),
        _attendee("joined", "e1", "o1", "p1", t, mode="live"),
    ])
    assert report.refused == 0, report.results
    live = admission.join(fb, SYSTEM, "s5", "o1", "p2")
    assert live.admitted, live


def test_S2_an_ingested_leave_of_a_hosting_member_frees_the_host_seat(fb, clock):
    """A plan without per-occurrence limits is decided in sets (`ingestion_batch`): a member's leave frees the
    host seat (S2) as a live leave does, and does not touch the attendees present."""
    make_tenant(fb, tenant_id="s2", catalog="attendee-credits", plan="pro")
    shrink(fb, "s2", "credits", 1200, seats=1)
    clock.advance(timedelta(hours=1))
    assert admission.join(fb, SYSTEM, "s2", "o1", "member-1", role="member").admitted
    assert admission.join(fb, SYSTEM, "s2", "o1", "p1").counted
    now = START + timedelta(hours=1)
    left = ingestion.ingest(fb, SYSTEM, "s2", [_attendee("left", "l1", "o1", "member-1", now)])
    assert left.results[0].decision["reason"] == "left"
    second = admission.join(fb, SYSTEM, "s2", "o1", "member-2", role="member")
    assert second.admitted, second
    p2 = ingestion.ingest(fb, SYSTEM, "s2", [_attendee("left", "l2", "o1", "p1", now)])
    assert p2.results[0].decision["reason"] == "left"
    with fb.uow(readonly=True) as uow:
        from farebox.metering.db import metering as repo

        occ = repo.lock_occurrence(uow.conn, "s2", "o1")
    assert (occ["present"], occ["hosts"]) == (0, 1), occ


def test_A1_lost_messages_replayed_after_the_next_window_opened_are_counted_in_their_own_window(fb, clock):
    """Yesterday's window was counted at 10:00 and today's at 12:00; messages of yesterday 11:00 and 15:00, lost and
    replayed now, are counted in the windows already open at their time (11:00 in yesterday's, which farebox
    keeps as the one before the open window): nothing more is billed (2 sessions, not 4), on the path in sets
    (a paid plan) and one by one (a trial), live and ingested alike."""
    make_tenant(fb, tenant_id="sets", catalog="agent-sessions", plan="playground")
    make_tenant(fb, tenant_id="trial")
    subscriptions.subscribe(fb, SYSTEM, "trial", catalog="agent-sessions", plan="sme", trial=True, cause="t")
    clock.advance(timedelta(days=1, hours=3))
    today = START + timedelta(days=1, hours=3)  # START is 09:00
    yesterday = today - timedelta(days=1)
    for tenant in ("sets", "trial"):
        assert ingestion.ingest(fb, SYSTEM, tenant, [_message("y10", "c1", yesterday - timedelta(hours=2))]).counted
        assert admission.message(fb, SYSTEM, tenant, "c1", sender="customer").counted  # today, 12:00
        replay = [_message("y11", "c1", yesterday - timedelta(hours=1)), _message("y15", "c1", yesterday + 3 * H)]
        report = ingestion.ingest(fb, SYSTEM, tenant, replay)
        assert [r.decision["reason"] for r in report.results] == ["window_open", "window_open"], report.results
        assert _sessions(fb, tenant) == 2
        again = admission.message(fb, SYSTEM, tenant, "c1", sender="customer")
        assert (again.counted, again.reason) == (False, "window_open")
    assert usage.verify(fb, SYSTEM) == []



@pytest.mark.parametrize("plan", ["playground", "trial"])  # decided in sets; one by one
def test_A1_a_late_message_less_than_a_window_before_the_open_one_counts_as_in_time_order(fb, clock, plan):
    """Messages at S and S + 20 h made one window; one at S - 23 h sent late starts a window holding S, and S + 20 h
    starts the next: 2 sessions, as the same three messages sent in time order make."""
    make_tenant(fb, tenant_id="abs")
    trial = plan == "trial"
    subscriptions.subscribe(fb, SYSTEM, "abs", catalog="agent-sessions", plan="sme" if trial else plan, trial=trial,
                            cause="t")
    clock.advance(timedelta(days=2))
    s = START + timedelta(days=1)
    in_order = [_message("b0", "c2", s - 23 * H), _message("b1", "c2", s), _message("b2", "c2", s + 20 * H)]
    assert ingestion.ingest(fb, SYSTEM, "abs", in_order).counted == 2
    assert ingestion.ingest(fb, SYSTEM, "abs", [_message("m1", "c1", s), _message("m2", "c1", s + 20 * H)]).counted == 1
    late = ingestion.ingest(fb, SYSTEM, "abs", [_message("m0", "c1", s - 23 * H)])
    assert late.counted == 1, late.results[0].decision
    assert _sessions(fb, "abs") == 4
    after = admission.message(fb, SYSTEM, "abs", "c1", sender="customer")  # S + 24 h: inside the second window
    assert (after.counted, after.reason) == (False, "window_open"), after
    assert usage.verify(fb, SYSTEM) == []


H = timedelta(hours=1)


def test_S2_a_hosting_member_ingested_as_an_attendee_gives_up_the_host_seat(fb, clock):
    """As a live join does (`decide_join`): the member stops hosting, enters the room as an attendee and is counted;
    the seat is free for another member."""
    make_tenant(fb, tenant_id="s2in", catalog="attendee-credits", plan="pro")
    shrink(fb, "s2in", "credits", 1200, seats=1)
    clock.advance(timedelta(hours=1))
    assert admission.join(fb, SYSTEM, "s2in", "o1", "member-1", role="member").admitted
    now = START + timedelta(hours=1)
    joined = ingestion.ingest(fb, SYSTEM, "s2in", [_attendee("joined", "j1", "o1", "member-1", now, mode="live")])
    assert joined.results[0].decision["reason"] == "admitted", joined.results[0].decision
    assert admission.join(fb, SYSTEM, "s2in", "o1", "member-2", role="member").admitted
    with fb.uow(readonly=True) as uow:
        from farebox.metering.db import metering as repo

        occ = repo.lock_occurrence(uow.conn, "s2in", "o1")
    assert (occ["present"], occ["hosts"], occ["counted"]) == (1, 1, 1), occ


@pytest.mark.parametrize("catalog", ["attendee-credits", "session-caps"])  # decided in sets; one by one (a cap)
def test_S6_a_live_join_logged_while_the_occurrence_ran_counts_when_it_arrives_after_the_end(fb, clock, catalog):
    """The occurrence ran from 09:00 to 09:30; a live join logged at 09:10 and sent at 09:35 is counted (decided as
    things stood at its time); one logged at 09:31 is `duration_exceeded`."""
    make_tenant(fb, tenant_id="d3end", catalog=catalog, plan="pro")
    assert admission.join(fb, SYSTEM, "d3end", "o1", "p1").counted
    clock.advance(timedelta(minutes=30))
    admission.end_occurrence(fb, SYSTEM, "d3end", "o1")
    clock.advance(timedelta(minutes=5))
    report = ingestion.ingest(fb, SYSTEM, "d3end", [
        _attendee("joined", "j2", "o1", "p2", START + timedelta(minutes=10), mode="live"),
        _attendee("joined", "j3", "o1", "p3", START + timedelta(minutes=31), mode="live"),
    ])
    assert [r.decision["reason"] for r in report.results] == ["admitted", "duration_exceeded"], report.results
    assert usage.verify(fb, SYSTEM) == []
