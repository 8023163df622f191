"""Every scenario under scenarios/ passes (issue 8), and a wrong expectation fails with its line."""

from pathlib import Path

import pytest

from farebox.scenarios.document import ScenarioError, parse_text
from farebox.scenarios.runner import STEPS, run, run_file

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path: Path) -> None:
    result = run_file(path)
    assert result.ok, "\n".join(map(str, result.failures))


def test_a_wrong_expectation_fails_with_the_steps_line_and_the_actual_answer() -> None:
    text = """catalog: session-caps
start: 2026-01-05T09:00:00Z
steps:
  - tenant: acme
    plan: pro
  - advance: 1d
    expect: {now: "2030-01-01T00:00:00+00:00"}
"""
    result = run(parse_text(text, "wrong.yaml", verbs=frozenset(STEPS)))
    assert not result.ok and result.steps_run == 2
    message = str(result.failures[0])
    assert message.startswith("wrong.yaml:6: advance: now: expected '2030-01-01T00:00:00+00:00', got '2026-01-06T09:00:00+00:00'")
    assert "actual answer" in message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("catalog: x\nstart: 2026-01-05T09:00:00Z\nsteps:\n  - fly: acme\n", 4, "unknown step fly"),
        ("catalog: x\nsteps: []\n", 1, "missing 'start'"),
        ("catalog: x\nstart: soon\nsteps:\n  - tenant: a\n", 1, "not an ISO date-time"),
        ("catalog: [\n", 2, "not valid YAML"),
    ],
)
def test_a_wrong_scenario_file_is_an_error_naming_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_text(text, "bad.yaml", verbs=frozenset(STEPS))
    assert exc.value.line == line and fragment in str(exc.value)


def test_a_refused_step_answers_with_the_reason_code() -> None:
    text = """catalog: session-caps
start: 2026-01-05T09:00:00Z
steps:
  - tenant: acme
    plan: no-such-plan
    expect: {ok: false, reason: plan_not_found}
"""
    result = run(parse_text(text, "refused.yaml", verbs=frozenset(STEPS)))
    assert result.ok, result.failures


def test_the_cli_exits_1_naming_the_line_and_the_actual_answer_of_a_wrong_expectation(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from farebox.entrypoints.cli import app

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        """catalog: attendee-credits
start: 2026-01-05T09:00:00Z
steps:
  - tenant: acme
    plan: pro
  - join: {tenant: acme, occurrence: o1, person: p1, mode: replay}
  - join: {tenant: acme, occurrence: o1, person: p1, mode: live}
    expect: {counted: true}
  - check: {tenant: acme, usage: {credits: 2}}
""",
        encoding="utf-8",
    )
    right = tmp_path / "right.yaml"
    right.write_text(wrong.read_text(encoding="utf-8").replace("counted: true", "counted: false, reason: already_counted").replace("credits: 2", "credits: 1"), encoding="utf-8")
    result = CliRunner().invoke(app, ["scenario", "run", str(wrong), str(right)])
    assert result.exit_code == 1, result.output
    assert f"{wrong}:7: join: counted: expected True, got False" in result.output
    assert "'reason': 'already_counted'" in result.output  # the actual answer
    assert f"{wrong}:9: check: usage: expected {{'credits': 2}}, got {{'credits': 1}}" in result.output
    assert "1 of 2 scenario files passed" in result.output
    assert CliRunner().invoke(app, ["scenario", "run", str(right)]).exit_code == 0


def test_a_mapping_catalog_changes_a_bundled_one_and_checks_compare_only_the_keys_named() -> None:
    text = """catalog:
  base: session-caps
  plans:
    pro:
      limits:
        attendees: {included: 2, policy: hard}
start: 2026-01-05T09:00:00Z
steps:
  - tenant: acme
    plan: pro
  - start: {tenant: acme, occurrence: o1}
  - join: {tenant: acme, occurrence: o1, person: p, count: 3}
    expect: {admitted_count: 2, reasons: {admitted: 2, attendee_cap_reached: 1}}
  - check: {tenant: acme, card: {plan: pro}, notifications_include: [invoice_issued]}
"""
    result = run(parse_text(text, "changed.yaml", verbs=frozenset(STEPS)))
    assert result.ok, "\n".join(map(str, result.failures))


def test_T16_D18_a_refused_step_without_an_expect_fails_naming_the_reason() -> None:
    """T16/D18: a misspelt plan answers `ok: false`; a step with no `expect` must not hide it."""
    text = """catalog: session-caps
start: 2026-01-05T09:00:00Z
steps:
  - tenant: acme
    plan: nosuchplan
"""
    result = run(parse_text(text, "typo.yaml", verbs=frozenset(STEPS)))
    assert not result.ok
    message = str(result.failures[0])
    assert message.startswith("typo.yaml:4: tenant: refused (plan_not_found)"), message
    assert "expect: {ok: false, reason: plan_not_found}" in message


def test_T16_the_cli_fails_a_refused_step_without_an_expect(tmp_path: Path) -> None:
    """D18: the CLI reported "1 of 1 scenario files passed" for a refused setup step."""
    from typer.testing import CliRunner

    from farebox.entrypoints.cli import app

    typo = tmp_path / "typo.yaml"
    typo.write_text("catalog: session-caps\nstart: 2026-01-05T09:00:00Z\nsteps:\n  - tenant: acme\n    plan: nosuchplan\n")
    result = CliRunner().invoke(app, ["scenario", "run", str(typo)])
    assert result.exit_code == 1, result.output
    assert "0 of 1 scenario files passed" in result.output
