"""Issue 13 item 3: a chunk decided in memory and written in sets answers exactly what the same events
answer one by one through `services.admission` (the rules are the domain's, not a second copy), and leaves
the same occurrences, people, conversations, counters, ledger and due items (G3, G4, L2, S6, A1, A2, A6, L7)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from farebox.kernel.access import SYSTEM
from farebox.metering.services import ingestion, ingestion_batch, usage
from farebox.storage.tables.core import due_items
from farebox.storage.tables.metering import (
    conversations,
    occurrence_people,
    occurrences,
    usage_counters,
    usage_records,
)

from factories import make_tenant
from metering_support import shrink

PLANS = [
    ("attendee-credits", "pro", {"credits": 6}),  # hard pool: credits_exhausted inside the batch (L7)
    ("attendee-credits", "free", {}),  # 30-minute occurrences: duration_exceeded, due items (S6)
    ("agent-sessions", "sme_answered", {"limit": 3}),  # A2 answered only, A6 the tenant's own limit
]
_tenants = itertools.count()


def _event(base: datetime, n: int, kind: str, a: int, b: int, minute: int, flag: bool) -> dict[str, Any]:
    time = (base + timedelta(minutes=minute)).isoformat()
    if kind == "message":
        return {
            "id": f"e{n}",
            "source": "s",
            "type": "conversation.message",
            "time": time,
            "data": {"conversation_id": f"c{a % 3}", "from": "customer" if flag else "agent"},
        }
    data: dict[str, Any] = {"occurrence_id": f"o{a % 4}", "person_id": f"p{b % 6}"}
    if kind == "join":
        data.update(mode="live" if flag else "replay", role="member" if b == 7 else "attendee")
    return {
        "id": f"e{n}",
        "source": "s",
        "type": {"join": "attendee.joined", "register": "attendee.registered", "leave": "attendee.left"}[kind],
        "time": time,
        "data": data,
    }


raw_events = st.lists(
    st.tuples(
        st.sampled_from(["join", "join", "join", "register", "leave", "message", "message"]),
        st.integers(0, 7),
        st.integers(0, 7),
        st.integers(0, 1400),
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


def _tenant(fb, catalog: str, plan: str, shape: dict[str, int]) -> str:
    tenant_id = f"t{next(_tenants)}"
    make_tenant(fb, tenant_id=tenant_id, catalog=catalog, plan=plan)
    if "credits" in shape:
        shrink(fb, tenant_id, "credits", shape["credits"])
    if "limit" in shape:
        usage.set_session_limit(fb, SYSTEM, tenant_id, shape["limit"])
    return tenant_id


def _state(fb, tenant_id: str) -> dict[str, Any]:
    with fb.engine.connect() as conn:

        def rows(table, *order) -> list[dict[str, Any]]:
            query = select(table).where(table.c.tenant_id == tenant_id).order_by(*order)
            return [
                {k: v for k, v in r.items() if k not in ("tenant_id", "id", "subscription_id")}
                | ({"id": r["id"]} if table is not usage_records and "id" in r else {})
                for r in conn.execute(query).mappings()
            ]

        return {
            "occurrences": rows(occurrences, occurrences.c.id),
            "people": rows(occurrence_people, occurrence_people.c.occurrence_id, occurrence_people.c.person_id),
            "conversations": rows(conversations, conversations.c.id),
            "counters": [(r["meter"], r["used"]) for r in rows(usage_counters, usage_counters.c.meter)],
            "ledger": sorted(
                (r["meter"], r["subject"], r["person_id"], r["at"]) for r in rows(usage_records, usage_records.c.at)
            ),
            "due": sorted(
                (r["kind"], r["ref"], r["due_at"])
                for r in rows(due_items, due_items.c.kind)
                if r["kind"].startswith("occurrence_")
            ),
        }


@pytest.mark.parametrize("catalog,plan,shape", PLANS, ids=[p[1] for p in PLANS])
def test_a_batch_decided_in_sets_answers_and_writes_what_one_by_one_does(fb, monkeypatch, catalog, plan, shape):

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=raw_events)
    def same(raw):
        base = fb.clock.now()
        in_sets, one_by_one = _tenant(fb, catalog, plan, shape), _tenant(fb, catalog, plan, shape)
        fb.clock.advance(timedelta(days=1))
        events = [_event(base, n, k, a, b, m, f) for n, (k, a, b, m, f) in enumerate(sorted(raw, key=lambda r: r[3]))]
        decided_in_sets: list[int] = []
        with monkeypatch.context() as m:
            apply = ingestion_batch.apply
            m.setattr(
                ingestion_batch,
                "apply",
                lambda uow, t, sub, items, **kw: decided_in_sets.append(len(items)) or apply(uow, t, sub, items, **kw),
            )
            fast = ingestion.ingest(
                fb, SYSTEM, in_sets, events + events[:3]
            )  # with repeats: the first answer again (G4)
        hosted = any(e["type"] == "attendee.joined" and e["data"].get("role", "attendee") != "attendee" for e in events)
        assert sum(decided_in_sets) == (0 if hosted else len(events))  # members and co-hosts: one by one (S2)
        with monkeypatch.context() as m:
            m.setattr(ingestion_batch, "eligible", lambda *a: False)
            slow = ingestion.ingest(fb, SYSTEM, one_by_one, events + events[:3])
        assert [(r.status, r.decision, r.code) for r in fast.results] == [
            (r.status, r.decision, r.code) for r in slow.results
        ]
        fast_state, slow_state = _state(fb, in_sets), _state(fb, one_by_one)
        for part in fast_state:  # part by part, so a difference names its table
            assert (part, fast_state[part]) == (part, slow_state[part]), [
                {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
                for a, b in zip(fast_state[part], slow_state[part], strict=False) if isinstance(a, dict)
            ]
        assert usage.verify(fb, SYSTEM, in_sets) == []

    same()
