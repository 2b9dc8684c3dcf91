"""The scheduler starts the ready spec with the most expected work behind it (issue 16)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dagspec.lifecycle import SpecStatus
from tests.engine_support import Project, dag_text
from tests.run_states import at, run, save, spec

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

FILLERS_FIRST = dag_text("x1", "x2", "a", ("b", ["a"]), ("c", ["b"]))


def started(project: Project) -> list[str]:
    return [r["argv"][-1].removeprefix("Build ") for r in project.starts()]


def test_one_slot_starts_the_longest_chain_first(
    project: Project, run_cli: Callable[..., int]
) -> None:
    dag = project.write_dag(FILLERS_FIRST)
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    assert started(project) == ["a", "b", "x1", "x2", "c"]  # c ties with x1 and x2 by then


def test_earlier_runs_say_which_spec_is_long(project: Project, run_cli: Callable[..., int]) -> None:
    done = SpecStatus.COMPLETED
    save(
        run(
            project.repo,
            "r0",
            spec("x2", done, started_at=at(0), finished_at=at(1000)),
            *(spec(s, done, started_at=at(0), finished_at=at(10)) for s in ("x1", "a", "b", "c")),
        )
    )
    dag = project.write_dag(FILLERS_FIRST)
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    assert started(project) == ["x2", "a", "b", "x1", "c"]
