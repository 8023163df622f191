"""Request dependencies: the service container, the caller, idempotency keys (G4)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from farebox.bootstrap import Farebox
from farebox.entrypoints.api.errors import refusal_response, status_for
from farebox.kernel import reasons
from farebox.kernel.access import Principal
from farebox.kernel.reasons import DomainError
from farebox.storage import idempotency as idem_repo
from farebox.storage.engine import WouldWait, free_connections, short_writes, without_waiting
from farebox.storage.uow import UnitOfWork, after_commit_deferred, run_after_commit
from farebox.tenants.services import tenants


# The dependencies are `async`: FastAPI runs a plain `def` one on a worker thread, and a
# request would wait for a thread three times before its handler's turn.  Only a key that
# must be read from the database goes to a thread.
async def get_fb(request: Request) -> Farebox:
    fb: Farebox = request.app.state.fb
    return fb


AuthorizationHeader = Annotated[str | None, Header(description="`Bearer <API key>`")]
ApiKeyHeader = Annotated[str | None, Header(description="The API key (alternative to Authorization)")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Same key and body from a caller of the same tenant and role: the first answer again "
        "(kept 24 hours); other body: 409",
    ),
]


async def get_principal(
    request: Request, authorization: AuthorizationHeader = None, x_api_key: ApiKeyHeader = None
) -> Principal:
    raw = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        raw = authorization[7:].strip()
    fb = request.app.state.fb
    principal = tenants.authenticate_known(fb, raw)
    if principal is tenants.UNKNOWN:
        principal = await _read_key(fb, raw or "")
    if principal is None:
        raise DomainError(reasons.UNAUTHORIZED)
    return principal


# The keys being read from the database, per event loop: when a remembered key's second is up, the
# requests that arrive with it meanwhile wait for that one read instead of taking a thread each.
_reading: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int, str], asyncio.Task[Any]]] = (
    weakref.WeakKeyDictionary()
)


async def _read_key(fb: Farebox, raw: str) -> Principal | None:
    loop = asyncio.get_running_loop()
    reading = _reading.setdefault(loop, {})
    which = (id(fb), raw)
    task = reading.get(which)
    if task is None:
        task = reading[which] = loop.create_task(run_in_threadpool(tenants.authenticate, fb, raw))
        task.add_done_callback(lambda _done: reading.pop(which, None))
    principal: Principal | None = await asyncio.shield(task)  # a cancelled request leaves the read to the others
    return principal


async def short_write(fb: Farebox, fn: Callable[[], Any]) -> Any:
    """`fn()`, a short write (an admission decision), on the event loop when SQLite's write lock can be had at
    once, or within `TURN_WAIT` behind other decisions of this process, and a pooled connection is free: no
    hand-over to a worker thread and back, and no waiting on SQLite's busy loop.  When another process holds
    the lock, or a longer writer of this process has the turn (an ingestion chunk, the worker), or the pool
    is nearly used up (by threads waiting for the lock), or on PostgreSQL (where a decision waits on the
    network), `fn` runs on a worker thread like any plain handler.  After-commit hooks (a payment, an
    e-mail) never run on the loop: they are handed to a worker thread.

    The short wait matters: a decision that went to a thread (say, behind a checkpoint) holds the turn when
    the next request arrives, which would go to a thread too, and so on, for as long as requests keep
    coming (measured: ~4,000 of ~4,500 joins at 32 connections, at 1.7x the CPU each)."""
    free = free_connections(fb.engine) if fb.engine.dialect.name == "sqlite" else 0
    if free is None or free >= 2:  # a pool of its own (in memory), or one connection to spare for a thread
        hooks: list[Callable[[], None]] = []
        try:
            with without_waiting(turn=TURN_WAIT), after_commit_deferred(hooks):
                return fn()
        except WouldWait:
            pass  # raised by a BEGIN before anything of `fn` was committed: nothing of it was written
        finally:  # also when `fn` fails after its commit
            if hooks:
                await run_in_threadpool(run_after_commit, hooks)
    return await run_in_threadpool(_short, fn)


TURN_WAIT = 0.01  # seconds: some 30 decisions ahead


def _short(fn: Callable[[], Any]) -> Any:
    with short_writes():
        return fn()


FB = Annotated[Farebox, Depends(get_fb)]
Caller = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True, slots=True)
class RequestKey:
    """An `Idempotency-Key` with the tenant the request is about ("" when its path names none)."""

    value: str
    tenant_id: str


async def idempotency_key(request: Request, value: IdempotencyKeyHeader = None) -> RequestKey | None:
    if value is None:
        return None
    return RequestKey(value, str(request.path_params.get("tenant_id", "")))


IdempotencyKey = Annotated[RequestKey | None, Depends(idempotency_key)]


@dataclass(frozen=True, slots=True)
class Call:
    """`FB`, `Caller` and `IdempotencyKey` solved as one dependency, for the admission routes.  FastAPI's
    work per request grows with the number of dependencies (each one's parameters are matched and
    validated anew): the three of them cost about half as much as an admission decision."""

    fb: Farebox
    caller: Principal
    key: RequestKey | None


async def get_call(
    request: Request,
    authorization: AuthorizationHeader = None,
    x_api_key: ApiKeyHeader = None,
    idempotency: IdempotencyKeyHeader = None,
) -> Call:
    caller = await get_principal(request, authorization, x_api_key)
    return Call(request.app.state.fb, caller, await idempotency_key(request, idempotency))


HotCall = Annotated[Call, Depends(get_call)]


@dataclass(frozen=True, slots=True)
class _Scope:
    tenant_id: str
    principal: str
    key: str


def _scope(caller: Principal, key: RequestKey) -> _Scope:
    """A stored answer belongs to the caller's tenant (for the operator: the tenant in the path) and role.

    Authorization depends on nothing else (kernel/access.py), so a replay only ever reaches a
    caller whom the first request's authorization let through (or refused) in the same way:
    a member never sees an owner's answer, nobody's refusal answers an owner (another
    tenant's owner has a namespace of its own), and one operator key has a namespace per tenant."""
    tenant_id = key.tenant_id if caller.is_operator else (caller.tenant_id or "")
    return _Scope(tenant_id, caller.role.value, key.value)


def _as_is(value: Any) -> Any:
    return value


def idempotent(
    fb: Farebox,
    caller: Principal,
    key: RequestKey | None,
    request_payload: Any,
    action: Callable[[], Any],
    *,
    status_code: int = 200,
    plain: bool = False,
    in_steps: bool = False,
) -> Any:
    """Run `action` once per idempotency key (G4).

    The answer is stored in the same transaction as the change (the ambient
    unit of work that the services join), so a crash can never leave a
    change without its stored answer or the other way round.  A refusal is
    stored too: the same request gets the same answer.  (Not so with
    `in_steps`, below.)  Keys are forgotten after
    `records.services.retention.IDEMPOTENCY_RETENTION`.

    `plain=True`: the payload and the answer are JSON values already (what a JSON body parses into, a report's
    `as_dict()`), so FastAPI's generic encoder, which walks every value (a second for 10,000 ingestion results),
    is skipped.

    `in_steps=True`: `action` commits in short transactions of its own (a batch of usage events, F2: live admission
    never waits behind a whole batch), and the answer is stored after it, in one more (`_stored_after`).  A request
    cut off before that runs again when it is retried: what it had committed answers as received before (G4:
    nothing counts twice).
    """
    encode = _as_is if plain else jsonable_encoder
    if key is None:
        return (_PlainJSON if plain else JSONResponse)(encode(action()), status_code=status_code)
    scope = _scope(caller, key)
    request = {"path_tenant": key.tenant_id, "payload": encode(request_payload)}
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    if in_steps:
        assert plain, "a batch's answer is JSON values already"
        return _stored_after(fb, scope, digest, action, status_code)
    with fb.uow() as uow:
        uow.ambient()
        earlier = _answered(fb, uow, scope, digest)
        if earlier is not None:
            return earlier
        now = fb.clock.now()
        try:
            body, code = encode(action()), status_code
        except DomainError as exc:
            uow.rollback()
            body, code = _refusal(exc)
            uow.conn.begin()
        return _store(fb, uow, scope, digest, body, code, now)


def _stored_after(
    fb: Farebox, scope: _Scope, digest: str, action: Callable[[], Any], status_code: int
) -> JSONResponse:
    """`in_steps`: the key is held while the request runs (a second request under it waits, then gets the stored
    answer or 409, having written nothing); a refusal is not stored (it may come after some steps committed: a
    retry runs again, and what those steps did answers as received before)."""
    with _key_held(fb, scope):
        with fb.uow(readonly=True) as uow:
            earlier = _answered(fb, uow, scope, digest)
        if earlier is not None:
            return earlier
        now = fb.clock.now()
        body = action()
        with fb.uow() as uow:
            return _store(fb, uow, scope, digest, body, status_code, now, rendered=_PlainJSON)


_held_keys: weakref.WeakValueDictionary[_Scope, threading.Lock] = weakref.WeakValueDictionary()
_held_keys_lock = threading.Lock()


@contextmanager
def _key_held(fb: Farebox, scope: _Scope) -> Iterator[None]:
    """Hold an idempotency key while its request runs: on PostgreSQL a session advisory lock on a connection of its
    own (every process; a process that dies lets go with its connection), on SQLite a lock of this process."""
    if fb.engine.dialect.name == "postgresql":
        name = f"farebox.idempotency:{scope.tenant_id}:{scope.principal}:{scope.key}"
        with fb.engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(hashtextextended(%s, 14))", (name,))
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(hashtextextended(%s, 14))", (name,))
                conn.rollback()
        return
    with _held_keys_lock:
        lock = _held_keys.get(scope)
        if lock is None:
            lock = _held_keys[scope] = threading.Lock()
    with lock:
        yield


class _PlainJSON(JSONResponse):
    """An answer that is JSON values already (`plain=True`), rendered by orjson (a batch's report is megabytes of
    JSON)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _answered(fb: Farebox, uow: UnitOfWork, scope: _Scope, digest: str) -> JSONResponse | None:
    """The stored answer under the key, replayed; 409 for another request under it; None when there is none."""
    stored = idem_repo.get(uow.conn, scope.tenant_id, scope.principal, scope.key)
    if stored is None:
        return None
    if stored["request_hash"] != digest:
        raise DomainError(reasons.IDEMPOTENCY_CONFLICT)
    return _replay(fb, scope, digest)


def _refusal(exc: DomainError) -> tuple[Any, int]:
    return json.loads(bytes(refusal_response(exc.refusal).body)), status_for(exc.code)


def _store(
    fb: Farebox,
    uow: UnitOfWork,
    scope: _Scope,
    digest: str,
    body: Any,
    code: int,
    now: datetime,
    *,
    rendered: type[JSONResponse] = JSONResponse,
) -> JSONResponse:
    """Store the answer under the key and commit; the answer."""
    try:
        idem_repo.put(uow.conn, tenant_id=scope.tenant_id, principal=scope.principal, key=scope.key,
                      request_hash=digest, status_code=code, response=body, created_at=now)
        uow.commit()
    except IntegrityError:
        # A concurrent request with the same key won the race: on PostgreSQL the insert
        # waits for the winner's commit and then fails (or the commit does).  Our
        # transaction is rolled back, and the winner's answer is the answer.
        uow.rollback()
        return _replay(fb, scope, digest)
    return rendered(body, status_code=code)


def _replay(fb: Farebox, scope: _Scope, digest: str) -> JSONResponse:
    with fb.uow(readonly=True) as uow:
        stored = idem_repo.get(uow.conn, scope.tenant_id, scope.principal, scope.key)
    if stored is None or stored["request_hash"] != digest:
        raise DomainError(reasons.IDEMPOTENCY_CONFLICT)
    return JSONResponse(stored["response"], status_code=stored["status_code"], headers={"Idempotent-Replayed": "true"})
