"""A spec whose agent exited 0 but whose work was not joined (a conflict with the work joined
before it, a killed driver) is taken up again at the join: `dag retry` and `dag resume`
commit and join its work as the user left it, and run no agent. Real git, the stand-in
autospec, whole runs in-process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text
from tests.git_gates import CommandGate, wait_gone
from tests.run_states import Output, start_dag

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

RunCli = Callable[..., int]


def _conflicted(project: Project, run_cli: RunCli) -> Path:
    """Run ``r`` of a and b, one at a time, both writing shared.txt (c after b, d after a):
    b's join conflicts with a's. b's worktree, where the message says to merge by hand."""
    project.fake.setenv("TOUCH", "shared.txt")
    project.write_dag(dag_text("a", "b", ("c", ["b"]), ("d", ["a"])))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    b = project.state().spec("b")
    assert (b.status.value, b.exit_code, b.agent_done) == ("failed", 0, True)
    assert "conflicts with the work" in (b.error or "")
    return Path(b.worktree or "")


def _merge_by_hand(worktree: Path) -> None:
    """``git merge`` the integration branch into b's worktree: it conflicts in shared.txt."""
    merging = ["git", "merge", "-q", "dag/r/_integration"]
    assert subprocess.run(merging, cwd=worktree, capture_output=True).returncode == 1


def _agents(project: Project) -> list[list[str]]:
    return [s["argv"] for s in project.starts() if s["argv"][:1] == ["run"]]


def _killed_after_a_s_agent(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    held_git: str,
    *features: str | tuple[str, list[str]],
) -> tuple[CommandGate, int]:
    """Run ``r`` of ``features`` and SIGKILL its driver once a's agent exited 0 and git
    ``held_git`` (a ``CommandGate``) is held; the gate and the held git's pid."""
    gate = CommandGate(tmp_path / "gate", held_git)
    monkeypatch.setenv("PATH", f"{gate.path}{os.pathsep}{os.environ['PATH']}")
    project.write_dag(dag_text(*features))
    with start_dag(project.repo, "run", "dag.yaml", "--run-id", "r") as driver:
        out = Output(driver)
        held = gate.wait()
        assert project.state().spec("a").agent_done
        driver.send_signal(signal.SIGKILL)
        assert out.finish() == -signal.SIGKILL
    return gate, held


@pytest.mark.parametrize("command", ["retry", "resume"])
@pytest.mark.parametrize("committed", [True, False], ids=["committed", "staged"])
def test_a_conflict_resolved_by_hand_is_joined_without_running_the_agent_again(
    project: Project, run_cli: RunCli, command: str, committed: bool
) -> None:
    """The user resolves the conflict in b's worktree (committed, or only staged with the
    merge still in progress): b's work is committed as they left it and joined; the only
    agent the second drive starts is c's, which waited for b."""
    worktree = _conflicted(project, run_cli)
    _merge_by_hand(worktree)
    (worktree / "shared.txt").write_text("a and b, reconciled\n")
    git(worktree, "add", "shared.txt")
    if committed:
        git(worktree, "commit", "-q", "-m", "reconcile b with a")
    agents = len(_agents(project))
    assert run_cli(command, "r", *(["b"] if command == "retry" else [])) == 0
    assert _agents(project)[agents:] == [["run", "-spti", "-y", "Build c"]]
    final = project.state()
    assert {s.id: s.status.value for s in final.specs} == dict.fromkeys("abcd", "completed")
    assert (final.spec("b").attempts, final.spec("b").agent_done) == (2, False)
    assert git(project.repo, "show", "main:shared.txt").startswith("a and b, reconciled\n")


def test_a_conflict_not_resolved_fails_again_without_running_the_agent(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retried as it is, b conflicts again; with the merge begun and its conflict left, the
    retry refuses to commit the markers and says where they are. No agent runs either time,
    and b still goes on at the join once resolved."""
    worktree = _conflicted(project, run_cli)
    agents = len(_agents(project))
    assert run_cli("retry", "r", "b") == 1
    b = project.state().spec("b")
    assert (b.status.value, b.exit_code, b.agent_done) == ("failed", 0, True)
    assert "conflicts with the work" in (b.error or "")
    _merge_by_hand(worktree)
    capsys.readouterr()
    assert run_cli("retry", "r", "b") == 1
    b = project.state().spec("b")
    assert (b.status.value, b.exit_code, b.agent_done, b.attempts) == ("failed", 0, True, 3)
    assert b.error == (
        f"{worktree} has conflicts not resolved yet, in shared.txt: resolve them and commit "
        "there, then `dag retry r b`"
    )
    assert "<<<<<<<" in (worktree / "shared.txt").read_text()  # nothing of it committed
    assert _agents(project)[agents:] == []


def test_a_spec_whose_join_failed_shows_the_tasks_its_agent_did(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """b's agent did all its tasks and exited 0; its join conflicted. The report and
    ``dag status`` showed a blank TASKS for it, as if it had none."""
    _conflicted(project, run_cli)
    a, b = project.state().spec("a"), project.state().spec("b")
    assert a.tasks_total and (b.tasks_done, b.tasks_total) == (a.tasks_done, a.tasks_total)
    tasks = f"{b.tasks_done}/{b.tasks_total}"
    for command, code in (("status", 1), ("report", 0)):
        capsys.readouterr()
        assert run_cli(command, "r") == code
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("b "))
        assert f" {tasks} " in f"{row} ", (command, row)


def test_a_driver_killed_while_joining_is_resumed_at_the_join(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: RunCli
) -> None:
    """The driver is SIGKILLed while it joins a's work (its agent exited 0): resume joins
    the work without running a's agent again."""
    gate, held = _killed_after_a_s_agent(project, tmp_path, monkeypatch, "merge-tree", "a")
    gate.release()
    wait_gone(held)
    assert run_cli("resume", "r") == 0
    assert _agents(project) == [["run", "-spti", "-y", "Build a"]]
    a = project.state().spec("a")
    assert (a.status.value, a.attempts, a.merged) == ("completed", 2, True)


def test_an_agent_s_work_lost_with_its_worktree_is_made_again(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: RunCli
) -> None:
    """The driver dies while it commits a's work (its agent exited 0), the commit never
    happens, and the worktree is deleted by hand: nothing of the agent's work is left, so
    resume runs a's agent again rather than join nothing and call a completed (a breaker's
    spec was completed and merged with no work, and its dependent built on nothing)."""
    dag = ("a", ("b", ["a"]))
    gate, held = _killed_after_a_s_agent(project, tmp_path, monkeypatch, "commit", *dag)
    os.killpg(gate.git_group(), signal.SIGKILL)  # as an OOM kill or a power cut would
    wait_gone(held)
    worktree = Path(project.state().spec("a").worktree or "")
    shutil.rmtree(worktree)
    assert run_cli("resume", "r") == 0
    assert _agents(project) == [["run", "-spti", "-y", "Build a"]] * 2 + [
        ["run", "-spti", "-y", "Build b"]
    ]
    final = project.state()
    assert {s.id: s.status.value for s in final.specs} == {"a": "completed", "b": "completed"}
    assert final.spec("a").spec_dir and final.spec("a").spec_dir != final.spec("b").spec_dir
    assert git(project.repo, "ls-tree", "--name-only", "main", f"{final.spec('a').spec_dir}/")
