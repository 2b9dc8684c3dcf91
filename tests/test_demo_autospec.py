"""The demo's simulated autospec honours two knobs of the tests' stand-in: a spec made to
fail at a stage (``FAKE_AUTOSPEC_FAIL_AT``, or a rule of ``FAKE_AUTOSPEC_CONTROL`` that
matches it), and a slower step (``FAKE_AUTOSPEC_STEP_SECONDS``). Run as the script
``dag demo`` writes."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from dagspec.commands.demo import _write_agent


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    return _write_agent(tmp_path / "autospec")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / ".autospec" / "memory").mkdir(parents=True)
    (repo / ".autospec" / "memory" / "constitution.yaml").write_text("constitution: {}\n")
    return repo


def _run(agent: Path, repo: Path, *args: str, **knobs: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_AUTOSPEC_")}
    env |= {f"FAKE_AUTOSPEC_{key}": value for key, value in knobs.items()}
    return subprocess.run(
        [str(agent), "run", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_a_rule_that_matches_the_description_fails_that_spec_at_its_stage(
    agent: Path, repo: Path, tmp_path: Path
) -> None:
    control = tmp_path / "fail.json"
    control.write_text(json.dumps([{"match": "Log every", "FAIL_AT": "plan"}]))
    other = _run(agent, repo, "-spti", "-y", "Say hello", CONTROL=str(control))
    assert other.returncode == 0, other.stderr
    failed = _run(agent, repo, "-spti", "-y", "Log every greeting", CONTROL=str(control))
    assert failed.returncode == 1
    assert failed.stderr == (
        "Error: executing stage plan: plan stage failed: simulated (FAIL_AT plan, from "
        "FAKE_AUTOSPEC_FAIL_AT or FAKE_AUTOSPEC_CONTROL)\n"
    )
    spec = repo / "specs" / "002-log-every-greeting"
    assert sorted(p.name for p in spec.iterdir()) == ["spec.yaml"]
    control.unlink()  # no file, no rule: it goes on at plan, as a retry does
    again = _run(agent, repo, "-pti", "-y", "--spec", spec.name, CONTROL=str(control))
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in spec.iterdir()) == ["plan.yaml", "spec.yaml", "tasks.yaml"]


@pytest.mark.slow
def test_fail_at_in_the_environment_fails_every_spec_and_a_null_rule_spares_one(
    agent: Path, repo: Path, tmp_path: Path
) -> None:
    control = tmp_path / "spare.json"
    control.write_text(json.dumps([{"match": "^Spared", "FAIL_AT": None}]))
    knobs = {"FAIL_AT": "implement", "CONTROL": str(control)}
    assert _run(agent, repo, "-spti", "-y", "Doomed", **knobs).returncode == 1
    assert not (repo / "src").exists()
    assert _run(agent, repo, "-spti", "-y", "Spared", **knobs).returncode == 0


def test_a_bad_control_file_is_one_line_not_a_traceback(
    agent: Path, repo: Path, tmp_path: Path
) -> None:
    control = tmp_path / "bad.json"
    control.write_text("[{")
    done = _run(agent, repo, "-spti", "-y", "Any", CONTROL=str(control))
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {control}: ")
    assert done.stderr.count("\n") == 1


@pytest.mark.slow
def test_step_seconds_is_the_pause_after_each_stage_and_task(
    agent: Path, repo: Path, tmp_path: Path
) -> None:
    """Four stages and three tasks: seven pauses, at least 2.1 s at 0.3 s (0.2 s without)."""
    control = tmp_path / "slow.json"
    control.write_text(json.dumps([{"STEP_SECONDS": 0.3}]))
    started = time.monotonic()
    assert _run(agent, repo, "-spti", "-y", "Slow", CONTROL=str(control)).returncode == 0
    assert time.monotonic() - started >= 7 * 0.3
