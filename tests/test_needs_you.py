"""What ``dag status`` says a run needs (leftovers of issues 12 and 15): its exit code agrees
with the one ``dag run`` ended with, its ``next:`` line never repeats the command just typed,
and every count in a message reads right for one."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import board, render
from dagspec.lifecycle import RunOptions, RunStatus, SpecStatus
from dagspec.workspace import RunPaths
from tests.conftest import ROOT, git
from tests.engine_support import Project, dag_text
from tests.run_states import run, save, spec

pytest_plugins = ("tests.engine_fixtures",)

RunCli = Callable[..., int]


# --- the exit code of status: 1 when the run needs you, as run said -------------------------


@pytest.mark.slow
def test_work_left_off_the_base_branch_is_exit_1_for_run_and_status_alike(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a", ("b", ["a"])))
    (project.repo / "README.md").write_text("my edit\n")  # dirty: the result waits on a branch
    assert run_cli("run", dag, "--run-id", "r") == 1
    capsys.readouterr()
    assert run_cli("status", "r") == 1
    assert run_cli("status", "r", "--json") == 1
    git(project.repo, "checkout", "--", "README.md")
    assert run_cli("merge", "r") == 0
    assert run_cli("status", "r") == 0


@pytest.mark.slow
def test_no_merge_asked_for_is_exit_0_for_run_and_status_alike(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    assert run_cli("status", "r") == 0
    assert capsys.readouterr().out.endswith("next: dag merge r\n")


@pytest.mark.slow
def test_a_merge_asked_for_later_and_left_waiting_is_exit_1(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    (project.repo / "README.md").write_text("my edit\n")  # dirty: the result waits on a branch
    assert run_cli("merge", "r") == 1
    capsys.readouterr()
    assert run_cli("status", "r") == 1  # asked for, and not on the base branch
    assert capsys.readouterr().out.endswith("next: dag merge r\n")
    git(project.repo, "checkout", "--", "README.md")
    assert run_cli("merge", "r") == 0
    assert run_cli("status", "r") == 0


@pytest.mark.slow
def test_a_merge_asked_for_later_that_failed_is_exit_1(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A `dag merge` that failed (here a signer that refuses; one too slow, or a second
    Ctrl-C, alike) left the run recorded as one of ``--no-merge``: status exited 0, as if
    no merge had been asked for."""
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    git(project.repo, "commit", "-q", "--allow-empty", "-m", "meanwhile")  # a merge to sign
    signer = tmp_path / "signer"
    signer.write_text("#!/bin/sh\necho 'no such key' >&2\nexit 1\n")
    signer.chmod(0o755)
    for name, value in (
        ("commit.gpgsign", "true"),
        ("gpg.format", "ssh"),
        ("gpg.ssh.program", str(signer)),
        ("user.signingkey", str(tmp_path / "key.pub")),
    ):
        git(project.repo, "config", name, value)
    assert run_cli("merge", "r") == 1
    capsys.readouterr()
    assert not project.state().spec("a").merged
    assert run_cli("status", "r") == 1  # asked for, and not on the base branch
    assert capsys.readouterr().out.endswith("next: dag merge r\n")


@pytest.mark.slow
def test_a_merge_whose_state_cannot_be_saved_after_main_moved_is_exit_1(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file size limit (or a full disk) at the end of `dag merge`: the base branch moved,
    then the state that says so could not be saved; status said nothing was merged and
    exited 0. The merge asked for is saved before the merge, so status says 1 there."""
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    main = git(project.repo, "rev-parse", "main")
    state_file = RunPaths(project.repo, "r").state_file
    cut = state_file.stat().st_size + 16  # room for "merge: true", none for the merge's record

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (cut, cut))

    merged = subprocess.run(
        [sys.executable, "-m", "dagspec", "merge", "r"],
        cwd=project.repo,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=limit,
        capture_output=True,
        text=True,
        check=False,
    )
    assert merged.returncode == 1, merged.stderr
    assert f"cannot write {state_file}: File too large" in merged.stderr
    assert git(project.repo, "rev-parse", "main") != main  # it moved
    assert not project.state().spec("a").merged  # and no record says so
    capsys.readouterr()
    assert run_cli("status", "r") == 1


def test_status_says_why_the_result_waits_on_its_branch(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose merge found the checkout dirty: `dag status` said only `next: dag merge
    r`, not that the result is not merged yet, nor why, as `dag run` had said."""
    base = git(git_repo, "rev-parse", "HEAD").strip()  # a real one: not a rewritten base
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED), base_commit=base))
    (git_repo / "a.txt").write_text("a\n")  # the result has work of its own: not taken
    git(git_repo, "add", "a.txt")
    git(git_repo, "commit", "-q", "-m", "the merged result")
    git(git_repo, "branch", "dag/r/_merged")
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")
    (git_repo / "README.md").write_text("my edit\n")
    assert run_cli("status", "r") == 1
    *_, note, hint = capsys.readouterr().out.splitlines()
    assert note == (
        "note: not merged yet: the result waits on dag/r/_merged, as main was not moved: "
        f"{git_repo} has uncommitted changes (README.md)"
    )
    assert hint == "next: dag merge r"
    git(git_repo, "checkout", "--", "README.md")
    assert run_cli("status", "r") == 1
    note = capsys.readouterr().out.splitlines()[-2]
    assert note.endswith("dag/r/_merged; nothing keeps main from taking it now")


@pytest.mark.parametrize(
    ("statuses", "merged", "merge", "code"),
    [
        ([SpecStatus.COMPLETED], True, True, 0),
        ([SpecStatus.COMPLETED], False, True, 1),  # the merge never ran, or left it off
        ([SpecStatus.COMPLETED, SpecStatus.COMPLETED], False, False, 0),  # --no-merge
        ([SpecStatus.COMPLETED, SpecStatus.BLOCKED], False, True, 1),
    ],
)
def test_status_exit_code_of_a_finished_run(
    git_repo: Path,
    run_cli: RunCli,
    statuses: list[SpecStatus],
    merged: bool,
    merge: bool,
    code: int,
) -> None:
    specs = [spec(f"s{i}", s, merged=merged and s is SpecStatus.COMPLETED)
             for i, s in enumerate(statuses)]  # fmt: skip
    save(run(git_repo, "r", *specs, options=RunOptions(merge=merge)))
    assert run_cli("status", "r") == code


# --- next: never the command just run -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "specs", "worktree"),
    [
        (RunStatus.COMPLETED, [SpecStatus.COMPLETED], None),
        (RunStatus.COMPLETED, [SpecStatus.COMPLETED], "/elsewhere/r/s0"),  # --keep-worktrees
        (RunStatus.FAILED, [SpecStatus.COMPLETED, SpecStatus.FAILED], None),
        (RunStatus.INTERRUPTED, [SpecStatus.PENDING], None),
    ],
)
@pytest.mark.parametrize("args", [("status", "r"), ("status",), ("status", "r", "--watch")])
def test_the_next_line_of_status_never_says_status(
    git_repo: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    status: RunStatus,
    specs: list[SpecStatus],
    worktree: str | None,
    args: tuple[str, ...],
) -> None:
    made = [spec(f"s{i}", s, merged=s is SpecStatus.COMPLETED, worktree=worktree)
            for i, s in enumerate(specs)]  # fmt: skip
    save(run(git_repo, "r", *made, status=status))
    run_cli(*args)
    hint = capsys.readouterr().out.splitlines()[-1]
    if hint.startswith("nothing left to do"):  # completed and merged: no next: at all
        assert status is RunStatus.COMPLETED and worktree is None
        return
    assert hint.startswith("next: dag ") and not hint.startswith("next: dag status")


def test_a_finished_and_merged_run_says_nothing_is_left_to_do(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hints went in circles: a run's end said `next: dag status r`, which said `next:
    dag report r`, already printed at the run's end; `dag resume` said `dag merge r` merges
    what is not merged yet, with nothing unmerged."""
    done = run(git_repo, "r", spec("a", SpecStatus.COMPLETED, merged=True))
    for after in (None, "status", "run"):
        assert render.next_command(done, after=after) is None
    assert render.summary(done, color=False).endswith(
        "nothing left to do: every spec is merged into main\n"
    )
    save(done)
    for args in (("status", "r"), ("resume", "r")):
        assert run_cli(*args) == 0
        out = capsys.readouterr().out
        assert "next:" not in out and "dag merge" not in out, out
        assert out.endswith("nothing left to do: every spec is merged into main\n"), out
    kept = run(Path("/r"), "r", spec("a", SpecStatus.COMPLETED, merged=True, worktree="/w"))
    assert render.next_command(kept, after="status") == "dag cleanup r"


# --- counts of one -------------------------------------------------------------------------


def test_counts_of_one_read_right(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("validate", dag) == 0
    assert capsys.readouterr().out.endswith("OK: 1 feature in 1 layer\n")
    assert run_cli("visualize", dag) == 0
    assert "1 feature in 1 layer (the longest chain of dependencies is 1 spec)" in (
        capsys.readouterr().out
    )
    assert run_cli("run", dag, "--dry-run", "--run-id", "r") == 0
    assert "dry run of r: 1 spec, one at a time" in capsys.readouterr().out
    assert "for 1 agent (Ctrl-C again to kill it now)" in board.stopping_line(10.0, 1)
    assert board.stopping_line(10.0, 0) == "stopping: no agent is running"  # all waiting
    for out in (board.stopping_line(10.0, 2),):
        assert "for 2 agents (Ctrl-C again to kill them now)" in out


@pytest.mark.slow
def test_a_run_of_one_spec_reads_right(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r") == 0
    out = capsys.readouterr().out
    assert "run r: 1 spec, one at a time" in out
    assert "1 spec (1 completed), 1 merged" in out and ", 1 attempt," in out
    for wrong in ("1 specs", "1 attempts", "1 features", "1 layers", "1 agents"):
        assert wrong not in out


# --- validate refuses what run refuses --------------------------------------------------------

CASES = {
    "one layer": ("      - {id: api, description: x}\n      - {id: API, description: y}\n", 5),
    "across layers": (
        "      - {id: Api-Server, description: x}\n  - id: L1\n    features:\n"
        "      - {id: api-server, description: y}\n",
        7,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_ids_equal_but_for_case_are_refused_by_validate_and_run_alike(
    runnable: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    features, line = CASES[name]
    (runnable / "dag.yaml").write_text("layers:\n  - id: L0\n    features:\n" + features)
    for args in (["validate"], ["run", "--dry-run"], ["run"]):
        assert run_cli(*args, runnable / "dag.yaml") == 1, args
        err = capsys.readouterr().err
        assert err.startswith(f"dag: error: {runnable / 'dag.yaml'}:{line}: feature id ") or (
            err.startswith(f"dag: error: dag.yaml:{line}: feature id ")
        ), err
        assert "only by case" in err and err.count("\n") == 1
    assert not (runnable / ".autospec" / "state" / "dag-runs").exists()


def test_layer_ids_equal_but_for_case_are_accepted_by_both(
    runnable: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    (runnable / "dag.yaml").write_text(
        "layers:\n  - id: L0\n    features:\n      - {id: a, description: x}\n"
        "  - id: l0\n    features:\n      - {id: b, description: y}\n"
    )
    assert run_cli("validate", runnable / "dag.yaml") == 0
    assert run_cli("run", "--dry-run", runnable / "dag.yaml") == 0
