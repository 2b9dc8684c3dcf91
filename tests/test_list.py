"""``dag list``: every run newest first, its counts, and damaged files named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.commands import list_runs
from dagspec.lifecycle import RunStatus, SpecStatus
from dagspec.workspace import RunPaths
from tests.run_states import at, run, save, spec

Cli = Callable[..., int]
DAY = 86400.0
HINT = (
    "hint: `dag cleanup RUN_ID --forget` takes a run off this list, with its worktrees "
    "(branches with unmerged work stay)\n"
)


@pytest.fixture(autouse=True)
def _a_day_after_the_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dag list`` tells how to forget runs once they are old: its clock is a day after the
    runs built here, so that they stay young whenever the tests run."""
    monkeypatch.setattr(list_runs, "utcnow", lambda: at(DAY))


def three_runs(repo: Path) -> None:
    save(
        run(
            repo,
            "middle",
            spec("a", SpecStatus.COMPLETED),
            spec("b", SpecStatus.FAILED),
            spec("c", SpecStatus.BLOCKED),
            status=RunStatus.FAILED,
            started_at=at(3600),
            finished_at=at(3600 + 125),
        )
    )
    save(run(repo, "oldest", spec("a", SpecStatus.COMPLETED), finished_at=at(30)))
    save(
        run(
            repo,
            "newest",
            spec("a", SpecStatus.INTERRUPTED),
            spec("b"),
            spec("c"),
            status=RunStatus.INTERRUPTED,
            started_at=at(7200),
            finished_at=at(7300),
        )
    )


def test_list_is_newest_first_with_counts(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    three_runs(git_repo)
    monkeypatch.setenv("COLUMNS", "80")  # the counts that do not fit go on a line of their own
    assert run_cli("list") == 0
    assert capsys.readouterr().out == (
        "RUN     DAG       STATUS         STARTED            TIME   SPECS\n"
        "newest  dag.yaml  ! interrupted  2026-11-24 12:15Z  1m40s\n"
        "  ↳ 1 interrupted, 2 pending\n"
        "middle  dag.yaml  ✗ failed       2026-11-24 11:15Z  2m05s\n"
        "  ↳ 1 completed, 1 failed, 1 blocked\n"
        "oldest  dag.yaml  ✓ completed    2026-11-24 10:15Z  30s    1 completed\n"
    )


def test_list_json(git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    three_runs(git_repo)
    assert run_cli("list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "run_id": "newest",
            "dag_file": "dag.yaml",
            "status": "interrupted",
            "started_at": "2026-11-24T12:15:00Z",
            "finished_at": "2026-11-24T12:16:40Z",
            "counts": {"interrupted": 1, "pending": 2},
        },
        {
            "run_id": "middle",
            "dag_file": "dag.yaml",
            "status": "failed",
            "started_at": "2026-11-24T11:15:00Z",
            "finished_at": "2026-11-24T11:17:05Z",
            "counts": {"completed": 1, "failed": 1, "blocked": 1},
        },
        {
            "run_id": "oldest",
            "dag_file": "dag.yaml",
            "status": "completed",
            "started_at": "2026-11-24T10:15:00Z",
            "finished_at": "2026-11-24T10:15:30Z",
            "counts": {"completed": 1},
        },
    ]


def test_a_running_run_is_listed_as_running_until_its_driver_dies(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    state = save(run(git_repo, "r", spec("a", SpecStatus.RUNNING), status=RunStatus.RUNNING))
    assert run_cli("list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["status"], listed["counts"]) == ("running", {"running": 1})
    save(run(git_repo, "r", spec("a", SpecStatus.RUNNING), status=RunStatus.RUNNING,
             driver_pid=-1))  # fmt: skip
    assert run_cli("list") == 0
    assert "r    dag.yaml  ! interrupted" in capsys.readouterr().out
    assert run_cli("list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["status"], listed["counts"]) == ("interrupted", {"interrupted": 1})
    assert 'status: "running"' in state.state_file.read_text()


def test_no_runs_is_a_friendly_line(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("list") == 0
    assert capsys.readouterr().out == f"no runs yet in {git_repo}: `dag run FILE` starts one\n"
    assert run_cli("list", "--json") == 0
    assert capsys.readouterr().out == "[]\n"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_damaged_file_is_named_and_the_others_still_listed(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    three_runs(git_repo)
    damaged = RunPaths(git_repo, "broken").state_file
    damaged.write_bytes(b"format: 1\nrun_id: broken\n")
    newer = RunPaths(git_repo, "future").state_file
    newer.write_bytes(b"format: 9\n")
    assert run_cli("list", *(["--json"] if as_json else [])) == 1
    captured = capsys.readouterr()
    first, second = captured.err.splitlines()
    assert first.startswith(f"dag: error: {damaged} is damaged (required field missing @ $.")
    assert first.endswith("; it was left as it is")
    assert second == (
        f"dag: error: {newer} was written by a newer dagspec (format 9; this one reads "
        "format 1): upgrade dagspec to use this run"
    )
    listed = (
        [r["run_id"] for r in json.loads(captured.out)]
        if as_json
        else [line.split()[0] for line in captured.out.splitlines()[1:] if line[0] != " "]
    )
    assert listed == ["newest", "middle", "oldest"]
    assert damaged.read_bytes() == b"format: 1\nrun_id: broken\n"
    assert newer.read_bytes() == b"format: 9\n"


@pytest.mark.parametrize(("count", "told"), [(19, False), (20, True)])
def test_many_runs_end_with_how_to_forget_one(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], count: int, told: bool
) -> None:
    for i in range(count):
        save(run(git_repo, f"r{i:02}", spec("a", SpecStatus.COMPLETED), started_at=at(i)))
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    assert out.endswith(HINT) is told
    assert len(out.splitlines()) == 1 + count + told
    assert run_cli("list", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == count  # JSON, and nothing else


@pytest.mark.parametrize(
    ("status", "days", "told"),
    [
        (RunStatus.COMPLETED, 29.9, False),
        (RunStatus.COMPLETED, 30, True),
        (RunStatus.FAILED, 45, True),
        (RunStatus.RUNNING, 45, False),  # still driven: it cannot be forgotten
    ],
)
def test_a_run_that_ended_a_month_ago_ends_the_list_with_how_to_forget_it(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    status: RunStatus,
    days: float,
    told: bool,
) -> None:
    if status is RunStatus.RUNNING:
        save(run(git_repo, "driven", spec("a", SpecStatus.RUNNING), status=status))
    else:
        save(run(git_repo, "old", spec("a"), status=status, finished_at=at(30)))
    monkeypatch.setattr(list_runs, "utcnow", lambda: at(30 + days * DAY))
    assert run_cli("list") == 0
    assert capsys.readouterr().out.endswith(HINT) is told


@pytest.mark.parametrize("where", ["state/dag-runs", "state"])
@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("list", "--json"),
        ("status",),
        ("status", "r"),
        ("resume",),
        ("resume", "r"),
        ("logs",),
        ("logs", "r", "a"),
        ("retry", "r", "a"),
        ("merge", "r"),
        ("cleanup", "r"),
        ("report",),
    ],
)
def test_a_file_where_the_runs_state_directory_goes_is_the_one_line_dag_run_gives(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], where: str, args: tuple[str]
) -> None:
    """``dag run`` names the file in one line (preflight); the readers of runs said "no
    runs yet" (``list``: exit 0) or "no run 'r'", as if nothing were wrong."""
    blocking = git_repo / ".autospec" / where
    blocking.parent.mkdir(parents=True, exist_ok=True)
    blocking.write_text("mine\n")
    assert run_cli(*args) == 1
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        f"dag: error: {blocking} is a file, where dagspec keeps the state of the runs of this "
        "repository (in .autospec/state/dag-runs/): move the file away\n",
    )
    assert blocking.read_text() == "mine\n"
