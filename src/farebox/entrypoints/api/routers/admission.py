"""Admission API (the hot path): occurrences and conversation messages.

Every decision answers 200 with `admitted` true or false and a reason: a
refusal of entry is an answer, not an error (docs/admission.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from farebox.entrypoints.api.deps import HotCall, idempotent, short_write
from farebox.entrypoints.api.schemas import Body
from farebox.metering.domain.admission import Decision
from farebox.metering.services import admission as service

router = APIRouter(prefix="/v1/tenants/{tenant_id}", tags=["admission"])

OccurrenceId = Annotated[str, Path(min_length=1, max_length=64, description="The platform's occurrence id")]
ConversationId = Annotated[str, Path(min_length=1, max_length=64, description="The platform's conversation id")]
PersonId = Field(
    min_length=1, max_length=128, description="The platform's id of the person (e.g. a hash of the e-mail)"
)


class DecisionOut(BaseModel):
    admitted: bool
    counted: bool = Field(description="This call consumed a unit (credit, attendee, billable session)")
    reason: str = Field(description="A stable reason code (docs/admission.md)")
    message: str
    warnings: list[str]
    warning_codes: list[str] = Field(
        default_factory=list, description="The stable code of each warning, in the same order (G15)"
    )
    position: int | None = Field(description="Place in the waiting room")
    deadline: datetime | None = Field(description="When the occurrence must end (S6)")
    started: bool = Field(False, description="This call opened the occurrence (its first entry starts the S6 clock)")


class JoinIn(Body):
    person_id: str = PersonId
    mode: Literal["early", "live", "replay", "on_demand"] = "live"
    role: Literal["attendee", "member", "cohost"] = "attendee"


class PersonIn(Body):
    person_id: str = PersonId


class MessageIn(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    sender: Literal["customer", "agent"] = Field(alias="from", description="Who wrote the message (A2)")


async def _answer(call: HotCall, request: dict[str, Any], decide: Any) -> Any:
    """Every admission handler: the decision, once per idempotency key (G4), as `DecisionOut`, on the event loop
    when the write lock is free (`short_write`).  The request and `Decision.as_dict()` are JSON values already:
    no generic encoding on the hot path."""
    fb, caller = call.fb, call.caller
    return await short_write(
        fb, lambda: idempotent(fb, caller, call.key, request, lambda: decide(fb, caller).as_dict(), plain=True)
    )


def _occurrence_route(op: str, summary: str, decide: Callable[..., Decision]) -> None:
    """`start` and `end` (no body)."""

    async def handler(tenant_id: str, occurrence_id: OccurrenceId, call: HotCall):
        return await _answer(
            call, {"op": op, "tenant": tenant_id, "occurrence": occurrence_id},
            lambda fb, caller: decide(fb, caller, tenant_id, occurrence_id),
        )

    handler.__name__ = op
    router.post(f"/occurrences/{{occurrence_id}}/{op}", response_model=DecisionOut, summary=summary)(handler)


def _person_route(op: str, summary: str, decide: Callable[..., Decision]) -> None:
    """`leave` and `register` (a person in the body)."""

    async def handler(tenant_id: str, occurrence_id: OccurrenceId, body: PersonIn, call: HotCall):
        return await _answer(
            call, {"op": op, "tenant": tenant_id, "occurrence": occurrence_id, **body.model_dump()},
            lambda fb, caller: decide(fb, caller, tenant_id, occurrence_id, body.person_id),
        )

    handler.__name__ = op
    router.post(f"/occurrences/{{occurrence_id}}/{op}", response_model=DecisionOut, summary=summary)(handler)


_occurrence_route("start", "Open an occurrence; the answer carries its deadline (S6)", service.start_occurrence)


@router.post(
    "/occurrences/{occurrence_id}/join",
    response_model=DecisionOut,
    summary="May this person enter? Counted once per occurrence (S4, L1, L2)",
)
async def join(tenant_id: str, occurrence_id: OccurrenceId, body: JoinIn, call: HotCall):
    return await _answer(
        call, {"op": "join", "tenant": tenant_id, "occurrence": occurrence_id, **body.model_dump()},
        lambda fb, caller: service.join(
            fb, caller, tenant_id, occurrence_id, body.person_id, mode=body.mode, role=body.role
        ),
    )


_person_route("leave", "A person leaves the room or the waiting room", service.leave)
_person_route("register", "A registration: always accepted, never counted (G5)", service.register)
_occurrence_route("end", "End an occurrence: everyone is removed", service.end_occurrence)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=DecisionOut,
    summary="A conversation message: opens a 24 h billable window when none is open (A1, A2)",
)
async def message(tenant_id: str, conversation_id: ConversationId, body: MessageIn, call: HotCall):
    return await _answer(
        call, {"op": "message", "tenant": tenant_id, "conversation": conversation_id, "from": body.sender},
        lambda fb, caller: service.message(fb, caller, tenant_id, conversation_id, sender=body.sender),
    )
