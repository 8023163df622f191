"""The set-up promise through real processes: migrate, load, demo-data, serve."""

import subprocess
import sys
import time

import httpx

from support import subprocess_env


def _farebox(*args, env, check=True, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "farebox", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_catalog_validate_refuses_a_broken_file_with_its_location(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntitle: x\nmeters: {m: {kind: attendees, scope: period}}\nplans: {pro: {name: Pro, price: '1.00', "
        "interval: week}}\n"
    )
    result = _farebox("catalog", "validate", str(bad), env=subprocess_env(), check=False)
    assert result.returncode == 1
    assert "bad.yaml" in result.stderr and "plan 'pro'" in result.stderr and "interval" in result.stderr
    ok = _farebox("catalog", "validate", "session-caps", "attendee-credits", "agent-sessions", env=subprocess_env())
    assert ok.stdout.count("valid") == 3


def test_D11_catalog_validate_prints_a_yaml_error_verbatim_with_the_file(tmp_path):
    """D11: Rich ate `[month: …]` as a markup tag and the location said `<unicode string>`."""
    from farebox.catalog.files import bundled_catalog_text

    bad = tmp_path / "syntax.yaml"
    bad.write_text(bundled_catalog_text("session-caps").replace("interval: month", "interval: [month", 1))
    result = _farebox("catalog", "validate", str(bad), env=subprocess_env(), check=False)
    assert result.returncode == 1
    assert "interval: [month" in result.stderr and "expected ',' or ']'" in result.stderr
    assert "<unicode string>" not in result.stderr and f'in "{bad}"' in result.stderr.replace("\n", "")


def test_D9_catalog_load_refuses_a_duplicate_key_naming_plan_and_field(tmp_path):
    from farebox.catalog.files import bundled_catalog_text

    dup = tmp_path / "dup.yaml"
    dup.write_text(
        bundled_catalog_text("session-caps").replace('price: "29.00"', 'price: "29.00"\n    price: "0.00"', 1)
    )
    env = subprocess_env(FAREBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.db'}")
    _farebox("migrate", env=env)
    result = _farebox("catalog", "load", str(dup), env=env, check=False)
    assert result.returncode == 1
    flat = " ".join(result.stderr.split())
    assert "plan 'pro': field 'price': duplicate key" in flat and "dup.yaml" in flat


def test_migrate_demo_and_serve_answer_healthz_and_docs(tmp_path):
    env = subprocess_env(FAREBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.db'}", FAREBOX_PORT="8765")
    _farebox("migrate", env=env, cwd=tmp_path)
    _farebox("catalog", "load", "--bundled", env=env, cwd=tmp_path)
    demo = _farebox("demo-data", env=env, cwd=tmp_path)
    assert "demo-agents" in demo.stdout and "operator API key" in demo.stdout
    server = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get("http://127.0.0.1:8765/healthz", timeout=1).text == "ok":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "farebox serve did not come up"
            time.sleep(0.2)
        assert httpx.get("http://127.0.0.1:8765/docs").status_code == 200
        key = (tmp_path / "var" / "operator-key").read_text().strip()
        tenants = httpx.get("http://127.0.0.1:8765/v1/tenants", headers={"Authorization": f"Bearer {key}"}).json()
        assert [t["id"] for t in tenants] == ["demo-agents", "demo-events", "demo-webinars"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_G14_export_command_writes_the_tenants_files(tmp_path):
    env = subprocess_env(FAREBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.db'}")
    _farebox("migrate", env=env, cwd=tmp_path)
    _farebox("catalog", "load", "--bundled", env=env, cwd=tmp_path)
    _farebox("demo-data", env=env, cwd=tmp_path)
    result = _farebox("export", "--tenant", "demo-events", "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
    assert "exported" in result.stdout and (tmp_path / "out" / "members.jsonl").read_text().count("\n") == 3
    assert (tmp_path / "out" / "members.csv").exists() and (tmp_path / "out" / "manifest.json").exists()
    missing = _farebox("export", "--tenant", "nobody", env=env, cwd=tmp_path, check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr


def test_D12_demo_data_prints_each_key_whole_on_one_line_and_how_to_get_a_new_one(tmp_path):
    import re

    from farebox.bootstrap import Farebox
    from farebox.clocks.system import SystemClock
    from farebox.storage.engine import make_engine
    from farebox.tenants.services import tenants

    url = f"sqlite:///{tmp_path / 'fb.db'}"
    env = subprocess_env(FAREBOX_DATABASE_URL=url, COLUMNS="80")
    _farebox("migrate", env=env, cwd=tmp_path)
    first = _farebox("demo-data", env=env, cwd=tmp_path).stdout
    keys = dict(re.findall(r"^\s*(demo-\w+)\s+(fbk_\S+)$", first, re.MULTILINE))
    assert set(keys) == {"demo-agents", "demo-events", "demo-webinars"}, first
    operator = re.search(r"^operator API key \(new\): (\S+)$", first, re.MULTILINE)
    assert operator, first
    fb = Farebox(engine=make_engine(url), clock=SystemClock())
    for tenant_id, key in keys.items():
        caller = tenants.authenticate(fb, key)
        assert caller is not None and caller.tenant_id == tenant_id
    assert tenants.authenticate(fb, operator.group(1)) is not None
    fb.engine.dispose()
    again = _farebox("demo-data", env=env, cwd=tmp_path).stdout
    assert "farebox keys issue --tenant demo-agents --role owner" in again
