"""The API key cache of the hot path (issue 13 item 4): a key revoked anywhere stops working within a second."""

from __future__ import annotations

from sqlalchemy import update

from farebox.kernel.access import SYSTEM, Role
from farebox.storage.tables.core import api_keys
from farebox.tenants.services import tenants

from factories import make_tenant


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(fb, monkeypatch):
    make_tenant(fb, tenant_id="ac", card=None)
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id="ac", role=Role.MEMBER)
    now = [1000.0]
    monkeypatch.setattr(tenants.time, "monotonic", lambda: now[0])
    assert tenants.authenticate(fb, issued.secret).tenant_id == "ac"
    with fb.uow() as uow:  # another process revokes it: this one's cache does not hear of it
        uow.conn.execute(update(api_keys).where(api_keys.c.id == issued.key_id).values(revoked_at=fb.clock.now()))
        uow.commit()
    now[0] += tenants.AUTH_CACHE_SECONDS / 2
    assert tenants.authenticate(fb, issued.secret) is not None  # still within the cache time
    now[0] += tenants.AUTH_CACHE_SECONDS / 2
    assert tenants.authenticate(fb, issued.secret) is None


def test_a_key_revoked_in_this_process_is_refused_at_once(fb):
    make_tenant(fb, tenant_id="ad", card=None)
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id="ad", role=Role.MEMBER)
    assert tenants.authenticate(fb, issued.secret) is not None
    tenants.revoke_api_key(fb, SYSTEM, issued.key_id)
    assert tenants.authenticate(fb, issued.secret) is None
    assert tenants.authenticate(fb, issued.key_id + ".wrong-secret") is None


def test_requests_that_arrive_together_with_a_key_not_remembered_wait_for_one_read_of_it(fb, monkeypatch):
    """When a remembered key's second is up, the requests in flight with it take one database read between
    them, not a worker thread and a read each; a key revoked meanwhile is refused to all of them."""
    import asyncio

    import httpx

    from farebox.entrypoints.api.app import create_app

    make_tenant(fb, tenant_id="ae", catalog="attendee-credits", plan="pro")
    issued = tenants.issue_api_key(fb, SYSTEM, tenant_id="ae", role=Role.MEMBER)
    reads = []
    stored = tenants._authenticate_stored
    monkeypatch.setattr(tenants, "_authenticate_stored", lambda fb_, raw: reads.append(raw) or stored(fb_, raw))
    app = create_app(fb)

    async def together(n: int) -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/v1/tenants/ae/occurrences/o1/join",
                        json={"person_id": f"p{i}"},
                        headers={"Authorization": f"Bearer {issued.secret}"},
                    )
                    for i in range(n)
                )
            )
        return [a.status_code for a in answers]

    assert asyncio.run(together(20)) == [200] * 20
    assert len(reads) == 1
    tenants._auth_cache.pop(fb.engine, None)  # the second is up, and the key was revoked elsewhere meanwhile
    with fb.uow() as uow:
        uow.conn.execute(update(api_keys).where(api_keys.c.id == issued.key_id).values(revoked_at=fb.clock.now()))
        uow.commit()
    assert asyncio.run(together(20)) == [401] * 20
    assert len(reads) == 2
