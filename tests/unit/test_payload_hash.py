"""G4: the payload hash that tells a resent event (a duplicate) from another with its id (a conflict) is stored,
so it must not change: the canonical text of each payload and its SHA-256 are pinned here (an upgrade of orjson
that wrote any of them differently would make every resent event a conflict)."""

from __future__ import annotations

import hashlib

import pytest

from farebox.metering.services import ingestion

PLAIN = [
    (
        {"id": "e-1", "source": "replay-logs", "type": "attendee.joined", "time": "2026-01-05T08:00:00Z",
         "data": {"person_id": "h(alice)", "occurrence_id": "o1", "mode": "replay"}},
        b'{"data":{"mode":"replay","occurrence_id":"o1","person_id":"h(alice)"},"id":"e-1","source":"replay-logs",'
        b'"time":"2026-01-05T08:00:00Z","type":"attendee.joined"}',
    ),
    (
        {"id": "m-7", "source": "chat", "type": "conversation.message", "time": None,
         "data": {"conversation_id": "café ☕ \n\t\"q\" \\ \U0001f600", "from": "customer"}},
        b'{"data":{"conversation_id":"caf\xc3\xa9 \xe2\x98\x95 \\n\\t\\"q\\" \\\\ \xf0\x9f\x98\x80","from":"customer"},'
        b'"id":"m-7","source":"chat","time":null,"type":"conversation.message"}',
    ),
    (
        {"id": "n-1", "source": "s", "type": "attendee.joined",
         "data": {"occurrence_id": "o", "person_id": "p", "n": [0.1, 1e16, -0.0, 3, 2**63 - 1, True]}},
        b'{"data":{"n":[0.1,1e+16,-0.0,3,9223372036854775807,true],"occurrence_id":"o","person_id":"p"},"id":"n-1",'
        b'"source":"s","type":"attendee.joined"}',
    ),
]


@pytest.mark.parametrize(("event", "text"), PLAIN)
def test_G4_a_plain_payload_is_hashed_from_its_pinned_canonical_text(event, text):
    assert ingestion.digest_of(event) == hashlib.sha256(text).hexdigest()
    reordered = {key: event[key] for key in reversed(list(event))}
    assert ingestion.digest_of(reordered) == ingestion.digest_of(event)  # key order never matters


def test_G4_a_number_that_is_not_finite_is_told_from_null_and_hashed_from_the_legacy_text():
    """orjson writes NaN and Infinity as null: such a payload is hashed from `json.dumps(sort_keys=True)`, so
    NaN, Infinity and null are three payloads (a resend that changed one into another is a conflict)."""
    base = {"id": "n-2", "source": "s", "type": "attendee.joined", "data": {"occurrence_id": "o", "person_id": "p"}}
    hashes = {ingestion.digest_of({**base, "time": value}) for value in (None, float("nan"), float("inf"))}
    assert len(hashes) == 3
    nan = {**base, "data": {**base["data"], "x": float("nan")}}
    assert ingestion.digest_of(nan) == ingestion._legacy_digest(nan)
    assert ingestion.digest_of(nan) != ingestion.digest_of({**base, "data": {**base["data"], "x": None}})


def test_G4_a_payload_orjson_cannot_write_is_hashed_from_the_legacy_text():
    wide = {"id": "n-3", "source": "s", "type": "attendee.joined", "data": {"occurrence_id": "o", "person_id": "p",
                                                                              "n": 2**70}}
    assert ingestion.digest_of(wide) == ingestion._legacy_digest(wide)
    assert ingestion.digest_of(wide) == "2ab0a6b2234d808647352c57e8d86de730c83241d613fafef8d0c66617ca9a38"
