"""Running it as a product: `/docs` and `/redoc` work offline (issue 16, review 2b) and `/metrics`
answers in the Prometheus text format with what an operator alerts on (issue 16 item 5)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from factories import make_tenant
from farebox.entrypoints.api.app import create_app
from metering_support import shrink

OPERATOR = {"Authorization": "Bearer test-operator-key"}


@pytest.fixture
def client(fb):
    with TestClient(create_app(fb)) as c:
        yield c


class _References(HTMLParser):
    """Every URL a page loads: src and href attributes, and quoted URLs inside its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]

    def handle_data(self, data: str) -> None:
        self.urls += re.findall(r"""['"`]((?:https?:)?//[^'"`]+|/[\w./-]+\.(?:js|css|png|json))['"`]""", data)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_issue16_api_docs_load_only_local_assets_and_those_are_served(client, page):
    response = client.get(page)
    assert response.status_code == 200
    parser = _References()
    parser.feed(response.text)
    assert parser.urls, "the page references no asset at all"
    remote = [u for u in parser.urls if "//" in u]
    assert remote == [], f"{page} loads from the network: {remote}"
    scripts = [u for u in parser.urls if u.endswith(".js")]
    assert scripts, f"{page} loads no script"
    for url in parser.urls:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert "/openapi.json" in parser.urls


def _families(client: TestClient) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def _value(families: dict[str, list], sample_name: str, **labels: str) -> float:
    family = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    return sum(
        s.value for s in families.get(family, []) if s.name == sample_name and labels.items() <= s.labels.items()
    )


def test_issue16_metrics_count_decisions_by_kind_and_reason_with_latency(client, fb):
    make_tenant(fb, tenant_id="m1", catalog="attendee-credits", plan="pro")
    shrink(fb, "m1", "credits", 1)
    before = _families(client)
    for person in ("a", "b"):
        client.post("/v1/tenants/m1/occurrences/o1/join", json={"person_id": person}, headers=OPERATOR)
    replay = {**OPERATOR, "Idempotency-Key": "k1"}
    for _ in range(2):  # the second is a replay of the first answer, not a decision
        client.post("/v1/tenants/m1/occurrences/o1/join", json={"person_id": "c"}, headers=replay)
    after = _families(client)

    def delta(sample: str, **labels: str) -> float:
        return _value(after, sample, **labels) - _value(before, sample, **labels)

    assert delta("farebox_decisions_total", kind="join", reason="admitted", admitted="true") == 1
    assert delta("farebox_decisions_total", kind="join", reason="credits_exhausted", admitted="false") == 2
    assert delta("farebox_decision_seconds_count", kind="join") == 3
    assert (
        delta(
            "farebox_http_responses_total",
            route="/v1/tenants/{tenant_id}/occurrences/{occurrence_id}/join",
            status="200",
        )
        == 4
    )


def test_issue16_metrics_count_ingested_events_by_status_and_show_the_outbox(client, fb):
    make_tenant(fb, tenant_id="m2", catalog="agent-sessions", plan="sme")
    before = _families(client)
    event = {
        "source": "s",
        "type": "conversation.message",
        "time": "2026-01-05T10:00:00Z",
        "data": {"conversation_id": "c1", "from": "customer"},
    }
    body = {"events": [{**event, "id": "e1"}, {**event, "id": "e1"}, {"id": "e2", "source": "s", "type": "nonsense"}]}
    answer = client.post("/v1/tenants/m2/usage/events", json=body, headers=OPERATOR).json()
    after = _families(client)
    statuses = [r["status"] for r in answer["results"]]
    for status in set(statuses):
        grew = _value(after, "farebox_ingested_events_total", status=status) - _value(
            before, "farebox_ingested_events_total", status=status
        )
        assert grew == statuses.count(status), status
    assert "farebox_outbox_deliveries" in after and "farebox_billing_due_subscriptions" in after
    pending = {
        s.labels["channel"]: s.value for s in after["farebox_outbox_deliveries"] if s.labels["status"] == "pending"
    }
    assert set(pending) == {"email", "webhook"}


def test_issue16_metrics_count_database_errors(client, fb):
    from sqlalchemy import text

    before = _families(client)
    with pytest.raises(Exception):
        with fb.engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
    after = _families(client)
    grew = sum(s.value for s in after["farebox_database_errors"] if s.name.endswith("_total")) - sum(
        s.value for s in before.get("farebox_database_errors", []) if s.name.endswith("_total")
    )
    assert grew == 1
