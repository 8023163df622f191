"""Contract fuzzing (G15, G4, F11): schemathesis drives every operation of the
OpenAPI schema with generated requests, as the operator, with every check
(`--checks all`); no 5xx, every response matches the schema, a schema-valid
request is not refused as invalid, and a refused request writes nothing."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import func, select

from farebox.entrypoints.api.app import create_app
from farebox.storage.tables import metadata

OPERATOR = {"Authorization": "Bearer test-operator-key"}
EXAMPLES_PER_OPERATION = 25
# Every check runs on every operation, except "schema-valid means accepted" where
# the refusal is about content JSON Schema cannot describe (F11):
BEYOND_THE_SCHEMA = {
    "POST /v1/catalogs": (
        "a catalog's YAML content (docs/catalog.md) is validated as a catalog: 422 catalog_invalid names file and field"
    ),
    "POST /v1/tenants/{tenant_id}/payment-methods": (
        "the payment provider refuses a token it does not know: 402 payment_method_refused"
    ),
    "POST /v1/tenants/{tenant_id}/subscription/change": (
        "without a subscription the catalog must be named (a state rule of the lifecycle)"
    ),
    "POST /v1/tenants/{tenant_id}/subscription/sales-requests": "the same state rule",
    "PATCH /v1/tenants/{tenant_id}/billing-details": (
        "each detail is trimmed, then checked as the invoice prints it (one line, an e-mail's form, a tax id's "
        "characters: invoicing/domain/billing_details.py): 422 validation_error names the field"
    ),
}


# An Idempotency-Key keeps the first answer, refusals included (G4: the same key gets the same answer).
REMEMBERS_REFUSALS = {"idempotency_keys"}


def _row_counts(fb) -> dict[str, int]:
    with fb.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables if t.name not in REMEMBERS_REFUSALS
        }


def test_every_operation_answers_within_its_contract(fb):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fb))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        excluded = [positive_data_acceptance] if operation.label in BEYOND_THE_SCHEMA else []

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case):
            before = _row_counts(fb)
            response = case.call_and_validate(headers=OPERATOR, excluded_checks=excluded)  # noqa: B023 - called at once, in this iteration
            if response.status_code >= 400:  # refused: nothing half-written
                assert _row_counts(fb) == before, (
                    f"{case.method} {case.formatted_path} -> {response.status_code} wrote rows"
                )

        fuzz()


def test_F11_an_unsupported_method_answers_405_with_every_allowed_method(fb):
    """OPTIONS (or any method a path does not have) is a 405 whose `Allow` lists the methods of every route of the
    path."""
    from fastapi.testclient import TestClient

    app = create_app(fb)
    paths = app.openapi()["paths"]
    with TestClient(app) as client:
        for path, operations in paths.items():
            url = path.replace("{", "").replace("}", "")
            response = client.options(url, headers=OPERATOR)
            assert response.status_code == 405, (path, response.status_code)
            assert set(response.headers["allow"].split(", ")) >= {m.upper() for m in operations}, (
                path,
                response.headers["allow"],
            )
            assert response.json()["error"]["code"] == "method_not_allowed"
