"""More counting rules by id: G3, S2, S3, L1, L2 (later period), L5."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from farebox.clocks import service as clocks
from farebox.kernel.access import SYSTEM
from farebox.metering.services import admission, usage
from farebox.storage.tables.metering import usage_counters

from factories import make_tenant


def test_L1_one_credit_per_attendee_whatever_the_mode(fb):
    make_tenant(fb, tenant_id="l1", catalog="attendee-credits", plan="pro")
    for person, mode in (("a", "early"), ("b", "live"), ("c", "replay"), ("d", "on_demand")):
        assert admission.join(fb, SYSTEM, "l1", "o1", person, mode=mode).counted
    assert usage.usage_summary(fb, SYSTEM, "l1").meter("credits").used == 4


def test_L5_free_plan_has_30_credits_a_year_and_30_minute_events(fb, clock):
    make_tenant(fb, tenant_id="l5", catalog="attendee-credits", plan="free")
    started = admission.start_occurrence(fb, SYSTEM, "l5", "o1")
    assert started.deadline == clock.now() + timedelta(minutes=30)
    assert sum(admission.join(fb, SYSTEM, "l5", "o1", f"p{i}").counted for i in range(31)) == 30
    assert admission.join(fb, SYSTEM, "l5", "o1", "late").reason == "credits_exhausted"
    credits = usage.usage_summary(fb, SYSTEM, "l5").meter("credits")
    assert (credits.used, credits.limit, credits.left, credits.percent) == (30, 30, 0, 100)


def test_S2_cohosts_need_no_seat_and_are_never_counted(fb):
    make_tenant(fb, tenant_id="s2", catalog="session-caps", plan="pro")
    decisions = [admission.join(fb, SYSTEM, "s2", "o1", f"co{i}", role="cohost") for i in range(5)]
    assert all(d.admitted and not d.counted and d.reason == "not_billable_member" for d in decisions)


def test_S3_no_limit_on_the_number_of_events(fb):
    make_tenant(fb, tenant_id="s3", catalog="session-caps", plan="free")
    assert all(admission.start_occurrence(fb, SYSTEM, "s3", f"o{i}").admitted for i in range(40))


def test_L2_a_replay_in_a_later_period_of_an_occurrence_already_counted_uses_no_credit(fb, clock):
    tc = clocks.create(fb, SYSTEM, name="l2", start=clock.now())
    make_tenant(fb, tenant_id="l2p", catalog="attendee-credits", plan="pro")
    clocks.attach(fb, SYSTEM, tc["id"], "l2p")
    assert admission.join(fb, SYSTEM, "l2p", "o1", "alice", mode="live").counted
    clocks.advance(fb, SYSTEM, tc["id"], by=timedelta(days=400))  # the annual period rolls
    replay = admission.join(fb, SYSTEM, "l2p", "o1", "alice", mode="replay")
    assert (replay.admitted, replay.counted, replay.reason) == (True, False, "already_counted")
    assert usage.usage_summary(fb, SYSTEM, "l2p").meter("credits").used == 0  # the new period is untouched


def test_G3_verify_finds_a_counter_that_differs_from_its_ledger(fb):
    make_tenant(fb, tenant_id="g3", catalog="attendee-credits", plan="pro")
    admission.join(fb, SYSTEM, "g3", "o1", "a")
    assert usage.verify(fb, SYSTEM) == []
    with fb.uow() as uow:
        uow.conn.execute(update(usage_counters).where(usage_counters.c.tenant_id == "g3").values(used=5))
        uow.commit()
    differences = usage.verify(fb, SYSTEM, "g3")
    assert [(d["what"], d["used"], d["recomputed"]) for d in differences] == [("counter", 5, 1)]


def test_G3_a_later_pool_refusing_leaves_no_ledger_row_of_an_earlier_one(fb):
    """A plan with two period pools of one kind: when the second refuses, the first pool's
    unit is given back and no ledger row of it stays (the counters match the ledger, G3)."""
    import yaml

    from farebox.catalog import service as catalog_service
    from farebox.catalog.files import bundled_catalog_text

    doc = yaml.safe_load(bundled_catalog_text("attendee-credits"))
    doc["name"] = "two-pools"
    doc["meters"]["seats"] = {"kind": "attendees", "scope": "period", "unit": "seat"}  # sorts after "credits"
    doc["plans"]["pro"]["limits"]["seats"] = {"included": 2, "policy": "hard"}
    catalog_service.load_document(fb, SYSTEM, yaml.safe_dump(doc, sort_keys=False))
    make_tenant(fb, tenant_id="tp", catalog="two-pools", plan="pro")
    answers = [admission.join(fb, SYSTEM, "tp", "o1", f"p{i}") for i in range(3)]
    assert [a.counted for a in answers] == [True, True, False]
    summary = usage.usage_summary(fb, SYSTEM, "tp")
    assert (summary.meter("credits").used, summary.meter("seats").used) == (2, 2)
    assert usage.verify(fb, SYSTEM, "tp") == []
