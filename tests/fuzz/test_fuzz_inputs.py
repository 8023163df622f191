"""Hypothesis fuzzing of the two parsers that take documents from outside (issue 9, G4, G15):
the catalog loader and the usage ingestion batch.  Every bad input gets a clear validation
error naming the field (a 4xx through HTTP), never a 500 or an uncaught exception, and a
refused input writes nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from farebox.catalog import service as catalog_service
from farebox.catalog.files import CatalogError, bundled_catalog_text, load_catalog_file, load_catalog_text
from farebox.entrypoints.api.app import create_app
from farebox.entrypoints.api.schemas import _nul_at
from farebox.kernel.access import SYSTEM
from farebox.metering.services import usage
from farebox.storage.tables.core import catalogs as catalogs_table
from farebox.storage.tables.core import plan_versions
from farebox.storage.tables.metering import usage_events

from factories import make_tenant

OPERATOR = {"Authorization": "Bearer test-operator-key"}
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# -- values and mutations ---------------------------------------------------------------------



def _values(finite: bool) -> st.SearchStrategy:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=not finite, allow_infinity=not finite),
        st.text(max_size=20),
        st.sampled_from(
            [
                "",
                "0",
                "-1",
                "1.005",
                "1e9",
                "NaN",
                "24h",
                "0m",
                "month",
                "hard",
                "99999999999999999999",
                "\x00",
                "é" * 300,
            ]
        ),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=6,
    )


values = _values(finite=False)  # YAML has .nan and .inf
json_values = _values(finite=True)  # JSON has not


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON-like document."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += paths(value, prefix + (index,))
    return found


@st.composite
def mutated(draw, document: dict, values: st.SearchStrategy = values) -> tuple[dict, tuple, str]:
    """The document with one value replaced, one key removed or one unknown key added."""
    doc = copy.deepcopy(document)
    path = draw(st.sampled_from(paths(doc)))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    if how == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "add" and isinstance(parent[path[-1]], dict):
        key = "zz_" + draw(st.text(alphabet="abcxyz", min_size=1, max_size=5))
        parent[path[-1]][key] = draw(values)
        path = path + (key,)
    else:
        how = "replace"
        parent[path[-1]] = draw(values)
    return doc, path, how


def _named(problems: list[str], path: tuple) -> bool:
    """Some problem names a field on the mutated path (or the whole document)."""
    words = [
        p.removesuffix("s") if p in ("meters", "plans") else p for p in path if isinstance(p, str)
    ]  # "meter 'x'", "plan 'y'"
    return any(any(word in problem for word in words) or "(document)" in problem for problem in problems)


CATALOGS = {
    name: yaml.safe_load(bundled_catalog_text(name)) for name in ("session-caps", "attendee-credits", "agent-sessions")
}


# -- the catalog loader, in-process ------------------------------------------------------------


@st.composite
def catalog_texts(draw) -> tuple[str, tuple, str]:
    """A bundled catalog with one mutation, as YAML text; the mutated path; how it was mutated."""
    doc, path, how = draw(mutated(CATALOGS[draw(st.sampled_from(sorted(CATALOGS)))]))
    return yaml.safe_dump(doc, allow_unicode=True), path, how


def _refusal(text: str) -> CatalogError | None:
    try:
        load_catalog_text(text, source="fuzz")
    except CatalogError as exc:
        return exc
    return None


@FUZZ
@given(case=catalog_texts())
def test_G15_catalog_loader_refuses_every_broken_document_naming_the_field(case):
    text, path, how = case
    refused = _refusal(text)
    if refused is not None:
        assert refused.problems and all(isinstance(p, str) and p for p in refused.problems)
        assert str(refused).startswith("fuzz: ")
        assert _named(refused.problems, path), (path, how, refused.problems)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
        st.sampled_from(["[", "{a: [}", "!!python/object:os.system ls", "a: &x [*x]", "- 1\n- 2", "name: x", "~", "3"]),
    )
)
def test_G15_catalog_loader_refuses_any_text_with_a_validation_error(text):
    try:
        load_catalog_text(text, source="fuzz")
    except CatalogError as exc:
        assert exc.problems


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=200), catalog_texts().map(lambda case: case[0].encode("utf-8")[: len(case[0]) // 2])
    )
)
def test_G15_catalog_file_of_any_bytes_is_refused_with_the_file_named(raw, tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog") / "fuzzed.yaml"
    path.write_bytes(raw)
    try:
        load_catalog_file(path)
    except CatalogError as exc:
        assert exc.source == str(path) and exc.problems


# -- the catalog loader through HTTP: 4xx, never 500, nothing half-written -----------------


def _catalog_state(fb) -> tuple:
    with fb.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(plan_versions)).scalar_one(),
            sorted(
                conn.execute(select(catalogs_table.c.name, catalogs_table.c.document)).all(), key=lambda r: r[0]
            ).__repr__(),
        )


def test_G4_catalog_upload_fuzzed_through_http_is_refused_with_a_4xx_and_writes_nothing(fb):
    client = TestClient(create_app(fb), raise_server_exceptions=False)

    @FUZZ
    @given(case=catalog_texts())
    def upload(case):
        text = case[0]
        assume(_refusal(text) is not None)  # a still-valid document would be loaded: not this test's subject
        before = _catalog_state(fb)
        response = client.post("/v1/catalogs", json={"document": text}, headers=OPERATOR)
        assert 400 <= response.status_code < 500, response.text
        error = response.json()["error"]
        assert error["code"] and error["message"]
        assert _catalog_state(fb) == before

    upload()


# -- the ingestion batch ---------------------------------------------------------------------

GOOD_EVENTS = [
    {"id": "e1", "source": "fuzz", "type": "attendee.joined", "time": "2026-01-05T09:00:00Z",
     "data": {"occurrence_id": "o1", "person_id": "p1", "mode": "replay", "role": "attendee"}},
    {"id": "e2", "source": "fuzz", "type": "attendee.registered", "data": {"occurrence_id": "o1", "person_id": "p2"}},
    {"id": "e3", "source": "fuzz", "type": "attendee.left", "data": {"occurrence_id": "o1", "person_id": "p1"}},
    {
        "id": "e4",
        "source": "fuzz",
        "type": "conversation.message",
        "data": {"conversation_id": "c1", "from": "customer"},
    },
]


def _events_stored(fb) -> int:
    with fb.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(usage_events)).scalar_one()


def test_G4_ingestion_batches_fuzzed_through_http_never_500_and_refusals_name_the_field(fb):
    make_tenant(fb, tenant_id="acme", catalog="attendee-credits", plan="enterprise")
    client = TestClient(create_app(fb), raise_server_exceptions=False)
    counter = iter(range(10**9))

    @FUZZ
    @given(data=st.data())
    def batch(data):
        n = next(counter)
        events = []
        for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
            good = copy.deepcopy(data.draw(st.sampled_from(GOOD_EVENTS)))
            good["id"] = f"{good['id']}-{n}-{len(events)}"
            event, path, _ = data.draw(mutated(good, json_values)) if data.draw(st.booleans()) else (good, (), "none")
            events.append(event if data.draw(st.integers(0, 9)) else data.draw(json_values))
        stored = _events_stored(fb)
        response = client.post("/v1/tenants/acme/usage/events", json={"events": events}, headers=OPERATOR)
        if response.status_code != 200:
            assert _events_stored(fb) == stored  # a batch refused whole wrote nothing
        not_objects = [i for i, e in enumerate(events) if not isinstance(e, dict)]
        if not_objects:  # the schema refuses the batch whole, naming the first bad element
            assert response.status_code == 422, response.text
            assert response.json()["error"]["details"]["problems"][0]["field"] == f"events.{not_objects[0]}"
            return
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["received"] == len(events) == len(body["results"])
        assert body["applied"] + body["duplicates"] + body["refused"] == len(events)
        for result in body["results"]:
            if result["status"] == "refused":
                assert result["code"] and result["message"], result
                if result["code"] == "event_invalid" and result["message"] != "an event is an object":
                    assert result["message"].startswith("`"), result  # names the field
        for event, result in zip(events, body["results"], strict=True):
            if _nul_at(event) is not None:  # F7: an event holding a NUL is refused on its own, naming the field
                assert (result["status"], result["code"]) == ("refused", "event_invalid"), result

    batch()
    assert usage.verify(fb, SYSTEM, "acme") == []


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries({"events": json_values}),
        st.fixed_dictionaries({"events": st.lists(json_values, max_size=3), "extra": json_values}),
    )
)
def test_G4_a_malformed_ingestion_body_is_a_422_naming_the_field(body, fuzz_client):
    client, fb = fuzz_client
    response = client.post("/v1/tenants/acme/usage/events", json=body, headers=OPERATOR)
    if response.status_code == 200:
        assert isinstance(body, dict) and isinstance(body.get("events"), list) and set(body) == {"events"}
        return
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["message"]


@pytest.fixture
def fuzz_client(fb):
    make_tenant(fb, tenant_id="acme", catalog="attendee-credits", plan="enterprise")
    return TestClient(create_app(fb), raise_server_exceptions=False), fb


def test_refused_catalog_upload_through_the_service_writes_nothing(fb):
    doc = copy.deepcopy(CATALOGS["session-caps"])
    doc["plans"]["pro"]["price"] = "12.345"  # more decimals than USD has
    before = _catalog_state(fb)
    with pytest.raises(CatalogError) as refused:
        catalog_service.load_document(fb, SYSTEM, yaml.safe_dump(doc))
    assert "plan 'pro'" in str(refused.value) and "price" in str(refused.value)
    assert _catalog_state(fb) == before
