"""A killed driver's run ends when it was last seen alive, and a command that only tidies it
(or refuses to go on with it) leaves that end where it was: `dag cleanup`, `dag merge`, a
`dag resume` or `dag retry` that stops before driving it, here or in a repository moved
since. Real git, the stand-in autospec, a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from dagspec import state
from dagspec.workspace import RunPaths
from tests.engine_support import Project, pid_alive
from tests.test_resume import RunCli, _driver_killed_at_plan

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow


def _seen_40_minutes_in(project: Project) -> str:
    """Make the killed run r begin an hour ago, its state last written 30 minutes in, its
    spec's log 40: when it was last seen alive (``state.format_time``)."""
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    a = project.state().spec("a")
    paths = RunPaths(project.repo, "r")
    run = attrs.evolve(project.state(), started_at=began)
    state.save(run.with_spec(attrs.evolve(a, started_at=began)), paths.state_file)
    for path, minutes in ((paths.state_file, 30), (Path(a.log or ""), 40)):
        seen = (began + timedelta(minutes=minutes)).timestamp()
        os.utime(path, (seen, seen))
    return state.format_time(began + timedelta(minutes=40))


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (("cleanup", "r"), 1),  # a's worktree holds what its agent wrote: kept
        (("cleanup", "r", "--force"), 0),
        (("merge", "r"), 0),
        (("resume", "r", "--autospec", "/nonexistent"), 1),
        (("retry", "r", "a"), 1),  # a is interrupted, not failed
    ],
    ids=["cleanup", "cleanup-force", "merge", "resume-refused", "retry-refused"],
)
@pytest.mark.parametrize("moved", [False, True], ids=["here", "moved"])
def test_a_command_that_does_not_drive_a_killed_run_leaves_its_end_where_it_was(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: tuple[str, ...],
    code: int,
    moved: bool,
) -> None:
    """The run's end, for `dag report`, stays at its last sign of life (40 minutes in),
    though the command saved the run (cleanup ends the agent the driver left; a moved
    repository's run is saved with its paths re-based), not when the command ran."""
    hang = _driver_killed_at_plan(project)
    last_seen = _seen_40_minutes_in(project)
    repo = project.repo
    if moved:  # the repository and its worktrees moved together, as `mv` does: mtimes kept
        repo = tmp_path / "moved"
        project.repo.rename(repo)
        project.worktree("a").parent.parent.rename(tmp_path / "moved.worktrees")
    try:
        assert run_cli("--repo", repo, *command) == code
    finally:
        if pid_alive(int(str(hang["pid"]))):  # the commands that do not end it
            os.kill(int(str(hang["pid"])), signal.SIGKILL)
    capsys.readouterr()
    assert run_cli("--repo", repo, "report", "r", "--json") == 0
    card = json.loads(capsys.readouterr().out)
    assert (card["status"], card["finished_at"]) == ("interrupted", last_seen)
    assert card["totals"]["duration_seconds"] == 2400
