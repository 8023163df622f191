"""Metering and admission: occurrences, the people in them, conversations,
period counters, the ledger of counted units (G3) and received usage events (G4).

Counters are kept as usage happens, so current usage is one row read (never a
scan of events); `farebox usage verify` recomputes them from the ledger.
"""

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, false

from farebox.storage.tables.base import metadata
from farebox.storage.types import Json, UTCDateTime

occurrences = Table(
    "occurrences",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(128), primary_key=True),  # the platform's occurrence id
    Column("subscription_id", String(40), nullable=True),
    Column("started_at", UTCDateTime, nullable=True),  # first entry (S6)
    Column("deadline_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("counted", Integer, nullable=False, default=0),  # unique attendees counted (S4, L2)
    Column("present", Integer, nullable=False, default=0),  # attendees in the room now (S5 concurrent)
    Column("peak", Integer, nullable=False, default=0),  # highest of the capped figure
    Column("queue_tail", Integer, nullable=False, default=0),  # waiting-room tickets handed out
    Column("cap_exceeded_at", UTCDateTime, nullable=True),  # S5 soft: the host was told once
    Column("hosts", Integer, nullable=False, default=0, server_default="0"),  # members hosting now (S2 seats)
    Column("created_at", UTCDateTime, nullable=False),
)

occurrence_people = Table(
    "occurrence_people",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("occurrence_id", String(128), primary_key=True),
    Column("person_id", String(128), primary_key=True),  # the platform's id (e.g. a hash of the e-mail)
    Column("registered_at", UTCDateTime, nullable=True),  # never counted (G5)
    Column("counted_at", UTCDateTime, nullable=True),  # counted once per occurrence (L2)
    Column("first_mode", String(16), nullable=True),
    Column("present", Boolean, nullable=False, default=False),
    Column("host", Boolean, nullable=False, default=False, server_default=false()),  # a member on a seat (S2)
    Column("waiting_ticket", Integer, nullable=True),  # place in the waiting room (S5)
    Column("updated_at", UTCDateTime, nullable=False),
)
Index(  # the waiting room's tickets (S5): only the few people who hold one
    "ix_occurrence_people_waiting",
    occurrence_people.c.tenant_id,
    occurrence_people.c.occurrence_id,
    occurrence_people.c.waiting_ticket,
    sqlite_where=occurrence_people.c.waiting_ticket.is_not(None),
    postgresql_where=occurrence_people.c.waiting_ticket.is_not(None),
)

conversations = Table(
    "conversations",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("window_started_at", UTCDateTime, nullable=False),  # A1: the open (or last) 24 h window
    Column("window_ends_at", UTCDateTime, nullable=False),
    Column("window_billed", Boolean, nullable=False),  # A2
    # A1: the latest window before the open one, where a message sent late may belong
    Column("earlier_started_at", UTCDateTime, nullable=True),
    Column("earlier_billed", Boolean, nullable=True),
    Column("windows", Integer, nullable=False),
    Column("billable", Integer, nullable=False),
    Column("first_message_at", UTCDateTime, nullable=False),
    Column("last_message_at", UTCDateTime, nullable=False),
)

usage_counters = Table(
    "usage_counters",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("subscription_id", String(40), primary_key=True),
    Column("meter", String(64), primary_key=True),
    Column("period_start_at", UTCDateTime, primary_key=True),
    Column("period_end_at", UTCDateTime, nullable=False),
    Column("used", Integer, nullable=False, default=0),
    Column("carried_in", Integer, nullable=False, default=0),  # L4: credits carried on an upgrade
    Column("trial_exhausted_at", UTCDateTime, nullable=True),  # usage.trial_exhausted published once
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("subscription_id", String(40), nullable=False),
    Column("meter", String(64), nullable=False),
    Column("period_start_at", UTCDateTime, nullable=False),
    Column("subject", String(140), nullable=False),  # "occurrence:<id>" or "conversation:<id>"
    Column("person_id", String(128), nullable=True),  # cleared by the retention purge (G14)
    Column("units", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("cause", Text, nullable=False),  # the request or event that counted it (G3)
)
Index(
    "ix_usage_records_counter",
    usage_records.c.tenant_id,
    usage_records.c.subscription_id,
    usage_records.c.meter,
    usage_records.c.period_start_at,
)

usage_events = Table(
    "usage_events",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("source", String(255), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("payload_hash", String(64), nullable=False),
    Column("type", String(128), nullable=False),
    Column("time", UTCDateTime, nullable=True),
    Column("result", Json, nullable=False),  # the first answer (G4)
    Column("received_at", UTCDateTime, nullable=False),
)

metering_settings = Table(
    "metering_settings",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("session_limit", Integer, nullable=True),  # A6: the tenant's own monthly limit
    Column("upgrade_required_peak", Integer, nullable=True),  # S5 soft: the peak that went over
    Column("upgrade_required_meter", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)
