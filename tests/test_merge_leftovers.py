"""What a merge leaves when git fails after (or while) it works: a stale lock file in the
way of the branches' deletion once the base branch has moved (the merge is recorded, one
line says what to do), git's several lines of complaint said in one. Real git in temporary
repositories; runs built as ``test_integration`` builds them."""

from __future__ import annotations

import base64
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state as dstate
from dagspec.errors import GitError
from dagspec.integration import integration_branch
from dagspec.workspace import RunPaths
from tests.conftest import ROOT, git, start_dag
from tests.git_gates import CommandGate
from tests.test_integration import joined_run
from tests.test_merge import RUN, add_commit, branch, make_run, tip
from tests.test_squash_merged import branches

Cli = Callable[..., int]

GIT_LOCK_ADVICE = """\
error: cannot lock ref 'refs/heads/x': Unable to create '/r/.git/refs/heads/x.lock': File exists.

Another git process seems to be running in this repository, e.g.
an editor opened by 'git commit'. Please make sure all processes
are terminated then try again. If it still fails, a git process
may have crashed in this repository earlier:
remove the file manually to continue.
"""


def test_git_s_complaint_is_one_line_naming_its_lock_file() -> None:
    message = str(GitError(["git", "update-ref", "x"], 128, "", GIT_LOCK_ADVICE))
    assert "\n" not in message
    assert message == (
        "`git update-ref x` failed with exit code 128: error: cannot lock ref "
        "'refs/heads/x': Unable to create '/r/.git/refs/heads/x.lock': File exists "
        "(/r/.git/refs/heads/x.lock is in the way: if no git is running in this repository, "
        "delete it (a git killed earlier left it))"
    )


@pytest.mark.parametrize(
    "lock",
    ["packed-refs.lock", f"refs/heads/{integration_branch(RUN)}.lock", "refs/heads/dag/r1/a.lock"],
)
def test_a_stale_lock_after_the_base_moved_leaves_the_merge_recorded(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], lock: str
) -> None:
    """The base branch fast-forwarded, then git would not delete the run's branches: the
    merge is recorded, and one line names the lock file and what to do."""
    _, integrated = joined_run(git_repo)
    stale = git_repo / ".git" / lock
    stale.write_text("")
    assert run_cli("merge", RUN, "--cleanup") == 1
    err = capsys.readouterr().err
    assert tip(git_repo) == integrated
    assert all(s.merged for s in dstate.load(RunPaths(git_repo, RUN)).specs)
    assert err.count("\n") == 1 and err.startswith("dag: error: the merge of run r1 is done")
    assert f"{stale} is in the way: if no git is running in this repository, delete it" in err
    assert err.endswith("then `dag cleanup r1` deletes them\n")
    assert run_cli("status", RUN) == 0
    stale.unlink()
    assert run_cli("cleanup", RUN) == 0
    assert branches(git_repo) == ["main"]


def test_a_stale_lock_of_the_base_branch_is_one_line(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The base branch, checked out nowhere, cannot be moved: git's nine lines are one."""
    base, _ = joined_run(git_repo)
    git(git_repo, "checkout", "-q", "--detach")
    stale = git_repo / ".git" / "refs" / "heads" / "main.lock"
    stale.write_text("")
    assert run_cli("merge", RUN) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"({stale} is in the way: if no git is running" in err
    assert tip(git_repo) == base and not any(
        s.merged for s in dstate.load(RunPaths(git_repo, RUN)).specs
    )
    assert branch("a") in branches(git_repo)


def limited_dag(repo: Path, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """``dag ARGS`` in its own process under a file size limit of ``limit`` bytes (``ulimit
    -f``): a git it starts is killed by SIGXFSZ when it writes past it."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "dagspec", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=limit_files,
        check=False,
    )


def test_the_file_size_limit_while_git_writes_the_merges_changes_nothing(git_repo: Path) -> None:
    """main moved since the run began, in the same big file as the spec: the merge writes
    a merged blob (``merge-tree --write-tree``) past the limit. One line says so, and that
    nothing was changed; once the limit is raised, `dag merge` merges."""
    rows = [base64.b64encode(bytes([i % 256]) * 45 + os.urandom(15)).decode() for i in range(2000)]
    add_commit(git_repo, {"big.txt": "\n".join(rows) + "\n"}, "a big file")
    paths = make_run(git_repo, {"a": ((), {"big.txt": "\n".join([*rows[:-1], "a"]) + "\n"})})
    add_commit(git_repo, {"big.txt": "\n".join(["user", *rows[1:]]) + "\n"}, "the user's edit")
    before = (tip(git_repo), paths.state_file.read_bytes())
    assert paths.state_file.stat().st_size < 20_000

    done = limited_dag(git_repo, 20_000, "merge", RUN)

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(
        "dag: error: git could not write the merges of run r1: the file size limit (ulimit -f) "
        "was reached; nothing was changed (no branch moved, no file touched): `"
    )
    assert done.stderr.endswith(" merge r1` once there is room\n")  # as typed: python -m
    assert done.stderr.count("\n") == 1
    assert (tip(git_repo), paths.state_file.read_bytes()) == before
    assert git(git_repo, "status", "--porcelain") == ""
    assert f"dag/{RUN}/_merged" not in branches(git_repo)
    again = limited_dag(git_repo, 100_000_000, "merge", RUN)
    assert again.returncode == 0, again.stderr
    assert dstate.load(paths).spec("a").merged


def test_a_commit_on_a_spec_branch_during_the_merge_is_taken_by_the_next(
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A commit on a's branch after the merge read its tip, before main moved: the
    cleanup said a's merge was "dropped?"; it says the branch moved during the merge and
    that `dag merge` takes the new commit, which it does."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    git(git_repo, "checkout", "-q", "--detach")  # main moved by `update-ref`, gated
    gate, path = CommandGate(tmp_path / "gate", "update-ref"), os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{gate.path}{os.pathsep}{path}")
    merging = start_dag(git_repo, "merge", RUN, "--cleanup")
    monkeypatch.setenv("PATH", path)
    gate.wait()
    git(git_repo, "checkout", "-q", branch("a"))
    late = add_commit(git_repo, {"late.txt": "late\n"}, "a commit made during the merge")
    git(git_repo, "checkout", "-q", "--detach")
    assert gate.release()
    out, err = merging.communicate(timeout=60)

    assert merging.returncode == 1, err  # its new commit is not on main: as `dag status`
    assert (
        f"kept branch {branch('a')}: it moved during the merge (a commit made on it after its "
        "work was merged): `"
    ) in out
    assert " merge r1` takes the new commit\n" in out
    assert run_cli("status", RUN) == 1
    assert "next: dag merge r1" in capsys.readouterr().out
    first = dstate.load(paths).spec("a").merge_commit
    assert run_cli("merge", RUN) == 0
    assert "  merged          a  " in capsys.readouterr().out
    a = dstate.load(paths).spec("a")
    assert a.merged and a.merge_commit not in (None, first)
    assert git(git_repo, "merge-base", "--is-ancestor", late, "main") == ""
    assert run_cli("merge", RUN) == 0  # nothing new: merged before
    assert "merged before   a" in capsys.readouterr().out


def test_dag_cleanup_names_a_stale_lock_in_the_way_of_a_branch(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dag cleanup` of a merged run, a stale packed-refs.lock left: each branch kept is
    said with the lock to delete, not git's first line alone."""
    joined_run(git_repo)
    assert run_cli("merge", RUN) == 0
    stale = git_repo / ".git" / "packed-refs.lock"
    stale.write_text("")
    capsys.readouterr()
    assert run_cli("cleanup", RUN) == 1
    out = capsys.readouterr().out
    assert (
        f"kept {branch('a')}: git could not remove it: {stale} is in the way: if no git is "
        "running in this repository, delete it (a git killed earlier left it)\n"
    ) in out, out
    stale.unlink()
    assert run_cli("cleanup", RUN) == 0
    assert branches(git_repo) == ["main"]


def test_dag_cleanup_says_a_commit_after_the_merge_is_not_a_merge_dropped(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    assert run_cli("merge", RUN) == 0
    git(git_repo, "checkout", "-q", branch("a"))
    add_commit(git_repo, {"late.txt": "late\n"}, "a commit made after the merge")
    git(git_repo, "checkout", "-q", "main")
    capsys.readouterr()
    assert run_cli("cleanup", RUN) == 1
    out = capsys.readouterr().out
    assert f"kept {branch('a')}: 1 commit not on main (made after its merge: `" in out, out
    assert "no longer on main" not in out


def test_no_room_for_the_state_once_main_moved_says_that_main_moved(git_repo: Path) -> None:
    """The file size limit is reached writing the run's state (it grows as specs become
    merged) after the base branch moved: "cannot write ... run the command again" said
    nothing of the merge, which stays. The report and one line say main moved and that
    `dag merge` records it; it does, merging nothing again."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "b": ((), {"b.txt": "b\n"})})
    before = paths.state_file.read_bytes()

    done = limited_dag(git_repo, len(before) + 16, "merge", RUN)

    moved = tip(git_repo)
    assert paths.state_file.read_bytes() == before and (git_repo / "b.txt").exists()
    assert done.returncode == 1 and f" -> {moved[:12]}" in done.stdout, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("dag: error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"dag: error: run r1 was merged (main was moved to {moved[:12]}, as said above), but "
        f"its state could not record it: cannot write {paths.state_file}: File too large: "
        "raise the file size limit (ulimit -f), then `"
    ), done.stderr
    assert errors[0].endswith(" merge r1` records it, merging nothing again")
    again = limited_dag(git_repo, 100_000_000, "merge", RUN)
    assert again.returncode == 0, again.stdout + again.stderr
    assert tip(git_repo) == moved
    assert all(s.merged for s in dstate.load(paths).specs)
