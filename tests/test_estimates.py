"""Expected durations from the record of earlier runs, and what ``run --dry-run`` says of time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import estimates
from dagspec.lifecycle import RunStatus, SpecState, SpecStatus
from tests.run_states import at, run, save, spec

COMPLETED = SpecStatus.COMPLETED


def done(spec_id: str, start: float, end: float) -> SpecState:
    return spec(spec_id, COMPLETED, started_at=at(start), finished_at=at(end))


def test_recorded_durations_are_the_completed_attempts_of_each_spec(tmp_path: Path) -> None:
    older = run(tmp_path, "r1", done("a", 0, 60), done("b", 10, 10), spec("c", SpecStatus.FAILED))
    newer = run(
        tmp_path,
        "r2",
        done("a", 0, 90),
        spec("b", COMPLETED, started_at=at(0)),  # no end recorded: passed over
        spec("c", SpecStatus.INTERRUPTED, started_at=at(0), finished_at=at(5)),
        status=RunStatus.INTERRUPTED,
    )
    # a 0 s record took under a second (times are whole seconds): it counts as half of one
    assert estimates.recorded_durations([older, newer]) == {"a": [60, 90], "b": [0.5]}
    assert sorted(estimates.finished_durations(older)) == [0.5, 60]


def test_load_history_reads_every_run_of_the_repository(git_repo: Path) -> None:
    save(run(git_repo, "r1", done("a", 0, 30), started_at=at(0)))
    save(run(git_repo, "r2", done("a", 0, 50), started_at=at(100)))
    assert estimates.load_history(git_repo) == {"a": [50, 30]}  # newest run first
    assert estimates.load_history(git_repo / "nowhere") == {}


GRAPH = {"a": [], "b": ["a"], "c": [], "d": []}


@pytest.mark.parametrize(
    ("history", "slots", "expected"),
    [
        ({}, 4, []),
        ({"x": [60]}, 4, []),  # history of specs not in this DAG says nothing
        (
            {"a": [600], "b": [1200], "c": [60], "d": [60]},
            2,
            [
                "critical path (30m00s): a -> b",
                "estimated time: 30m00s (2 at once; from earlier runs of every spec)",
            ],
        ),
        (
            {"a": [600], "b": [1200], "c": [60]},
            1,
            [
                "critical path (30m00s): a -> b",
                "estimated time: 41m00s (one at a time; from earlier runs of 3 of 4 specs, "
                "the others taken as typical)",
            ],
        ),
    ],
)
def test_plan_lines_give_the_critical_path_and_the_estimate_only_from_history(
    history: dict[str, list[float]], slots: int, expected: list[str]
) -> None:
    assert estimates.plan_lines(GRAPH, history, slots) == expected


DAG = """\
dag:
  name: "t"
layers:
  - id: "L0"
    features:
      - id: "a"
        description: "Build a"
      - id: "b"
        description: "Build b"
        depends_on: ["a"]
      - id: "c"
        description: "Build c"
"""


@pytest.mark.slow  # three dry runs in-process: about 0.2 s, more on a busy machine
def test_dry_run_prints_the_critical_path_when_history_exists(
    runnable: Path,
    git_repo: Path,
    write_dag: Callable[..., Path],
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    dag = write_dag(DAG)
    assert run_cli("run", dag, "--dry-run", "--run-id", "r") == 0
    assert "critical path" not in capsys.readouterr().out
    save(run(git_repo, "r0", done("a", 0, 300), done("b", 300, 900), done("c", 0, 1200)))
    assert run_cli("run", dag, "--dry-run", "--run-id", "r", "--parallel") == 0
    out = capsys.readouterr().out
    assert out.endswith(
        "critical path (20m00s): c\n"
        "estimated time: 20m00s (4 at once; from earlier runs of every spec)\n"
    )
    assert run_cli("run", dag, "--dry-run", "--run-id", "r") == 0
    assert "estimated time: 35m00s (one at a time;" in capsys.readouterr().out
