"""Plans are versioned: a subscribed plan version never changes under a tenant."""

import yaml

from farebox.catalog import service as catalog
from farebox.catalog.files import bundled_catalog_text
from farebox.kernel.access import SYSTEM
from farebox.subscriptions.services import subscriptions

from factories import make_tenant


def test_reloading_an_unchanged_catalog_adds_no_version(fb):
    report = catalog.load(fb, SYSTEM, "agent-sessions")
    assert report.added == [] and "sme v1" in report.unchanged


def test_edited_plan_gets_a_new_version_and_subscribers_keep_theirs(fb, tmp_path):
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    data = yaml.safe_load(bundled_catalog_text("agent-sessions"))
    data["plans"]["sme"]["price"] = "175.00"
    path = tmp_path / "agent-sessions.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    report = catalog.load(fb, SYSTEM, str(path))
    assert report.added == ["sme v2"]
    assert subscriptions.current(fb, SYSTEM, "acme").plan.price.amount_minor == 15000
    make_tenant(fb, tenant_id="newco", catalog="agent-sessions", plan="sme")
    assert subscriptions.current(fb, SYSTEM, "newco").plan.price.amount_minor == 17500


def test_a_plan_removed_from_the_catalog_is_no_longer_offered(fb, tmp_path):
    data = yaml.safe_load(bundled_catalog_text("session-caps"))
    del data["plans"]["pro_plus"]
    path = tmp_path / "session-caps.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert catalog.load(fb, SYSTEM, str(path)).retired == ["pro_plus"]
    offered = {p["code"] for c in catalog.list_catalogs(fb) if c["name"] == "session-caps" for p in c["plans"]}
    assert "pro_plus" not in offered and "pro" in offered
