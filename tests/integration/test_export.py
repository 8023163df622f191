"""Data export (issue 9, G14): every table of the tenant's records as JSON Lines and CSV, no secrets, no other
tenant."""

import csv
import io
import json
import zipfile

import pytest

from farebox.kernel.access import SYSTEM, Principal, Role
from farebox.kernel.reasons import DomainError
from farebox.records.services import export
from farebox.tenants.services import tenants

from factories import make_tenant


def test_G14_export_writes_each_table_as_jsonl_and_csv_with_a_manifest(fb, tmp_path):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")
    make_tenant(fb, tenant_id="other", catalog="session-caps", plan="free")
    tenants.add_member(fb, SYSTEM, "acme", email="m@acme.test", role=Role.MEMBER)
    tenants.issue_api_key(fb, SYSTEM, tenant_id="acme", role=Role.ADMIN)

    report = export.export_to_directory(fb, SYSTEM, "acme", tmp_path)

    assert report.tables["members"] == 2 and report.tables["subscriptions"] == 1 and report.tables["audit_log"] >= 3
    assert "api_keys" not in report.tables and "idempotency_keys" not in report.tables
    members = [json.loads(line) for line in (tmp_path / "members.jsonl").read_text().splitlines()]
    assert {m["email"] for m in members} == {"owner@acme.test", "m@acme.test"}
    with (tmp_path / "subscriptions.csv").open(newline="") as f:
        subs = list(csv.DictReader(f))
    assert len(subs) == 1 and subs[0]["tenant_id"] == "acme"
    for name in report.files:
        text = (tmp_path / name).read_text()
        assert (
            "other" not in {json.loads(line).get("tenant_id") for line in text.splitlines()}
            if name.endswith(".jsonl") and text
            else True
        )
        assert "secret" not in text.lower() or name == "manifest.json"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["tenant_id"] == "acme" and manifest["tables"] == report.tables


def test_G6_export_is_for_the_operator_and_the_tenants_owners_and_admins(fb):
    make_tenant(fb, tenant_id="acme")
    for principal, code in (
        (Principal(Role.MEMBER, tenant_id="acme"), "forbidden"),
        (Principal(Role.OWNER, tenant_id="other"), "not_found"),
    ):
        with pytest.raises(DomainError) as e:
            export.export_zip(fb, principal, "acme")
        assert e.value.code == code
    archive = zipfile.ZipFile(io.BytesIO(export.export_zip(fb, Principal(Role.ADMIN, tenant_id="acme"), "acme")))
    assert "acme/manifest.json" in archive.namelist() and "acme/members.csv" in archive.namelist()


def test_export_of_an_unknown_tenant_is_not_found(fb, tmp_path):
    with pytest.raises(DomainError) as e:
        export.export_to_directory(fb, SYSTEM, "nobody", tmp_path)
    assert e.value.code == "not_found"
