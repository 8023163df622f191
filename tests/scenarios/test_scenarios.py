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
