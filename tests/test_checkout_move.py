"""The fast-forward of the user's checkout is finished or undone, never left half done
(issue 11): git itself killed midway (SIGKILL at a filter gate, SIGXFSZ in the middle of a
50 MB file), ``dag`` killed while its git goes on, a branch git could not move. Each time
the next ``dag`` command completes or undoes it, and the user's own files stay as they are."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagspec import checkout_move
from dagspec.workspace import RunPaths, runs_dir
from tests.conftest import ROOT, git
from tests.fake_autospec_fixture import wait_for
from tests.git_gates import CommandGate, FilterGate, wait_gone
from tests.run_states import Output
from tests.test_merge import RUN, branch, make_run, tip

pytestmark = pytest.mark.slow  # a 50 MB file; real processes killed (``test_checkout_undo``
# has the fast cases)

BIG = 50 * 1024 * 1024  # bytes: the size of the file of issue 11
CUT = 15 * 1024 * 1024  # where git is stopped writing it


def _write(repo: Path, files: dict[str, bytes | None]) -> None:
    for name, data in files.items():
        if data is None:
            git(repo, "rm", "-q", name)
        else:
            (repo / name).write_bytes(data)
            git(repo, "add", name)


@pytest.fixture
def moving(git_repo: Path, tmp_path: Path) -> Iterator[tuple[Path, FilterGate]]:
    """A completed run ``r1`` whose merge fast-forwards main by: a deleted file, files
    written before the gated one (``0-early.txt``), the gated ``0-gate.txt``, a 50 MB file,
    a changed ``notes.txt`` and ``z-late.txt``: git writes them in that order."""
    _write(git_repo, {".gitattributes": b"0-gate.txt filter=gate\n", "gone.txt": b"old\n"})
    _write(git_repo, {"notes.txt": b"old notes\n"})
    git(git_repo, "commit", "-qm", "the user's files")
    make_run(git_repo, {"a": ((), {"0-early.txt": "early\n"})})
    git(git_repo, "checkout", "-q", branch("a"))
    big = os.urandom(BIG // 2).hex().encode()
    work = {"gone.txt": None, "0-gate.txt": b"gated\n", "a-big.bin": big}
    _write(git_repo, {**work, "notes.txt": b"new notes\n", "z-late.txt": b"late\n"})
    git(git_repo, "commit", "-qm", "work of a")
    git(git_repo, "checkout", "-q", "main")
    (git_repo / "mine.txt").write_text("the user's, untracked\n")
    gate = FilterGate(git_repo, tmp_path / "gate")
    yield git_repo, gate
    if gate.reached():  # a failed test leaves no git held at the gate
        gate.release()


def _merge(repo: Path, path: str | None = None) -> Output:
    """``dag merge r1`` in a process of its own, stderr and stdout together; with ``path``
    first on PATH (a gate's ``git``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    return Output(
        subprocess.Popen(
            [sys.executable, "-m", "dagspec", "merge", RUN],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    )


def _killed(merging: Output) -> None:
    merging.proc.kill()
    merging.proc.communicate()


def _finish(merging: Output) -> int:
    """Its exit code, once it has printed everything."""
    code = merging.finish(timeout=60)
    assert merging.proc.stdout is not None
    merging.proc.stdout.close()
    return code


def _kill_at_gate(repo: Path, gate: FilterGate, *, git_too: bool) -> Output:
    """``dag merge`` held inside its fast-forward, then killed (with its git if ``git_too``)."""
    merging = _merge(repo)
    group = gate.git_group()
    _killed(merging)
    if git_too:
        os.killpg(group, signal.SIGKILL)
        wait_gone(group)
    return merging


def _status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def test_git_killed_mid_checkout_is_undone_and_the_users_edits_kept(
    moving: tuple[Path, FilterGate],
) -> None:
    repo, gate = moving
    before = tip(repo)
    _kill_at_gate(repo, gate, git_too=True)
    assert (repo / "0-early.txt").exists() and not (repo / "gone.txt").exists()
    assert (repo / ".git" / "index.lock").exists()  # half done, as issue 11 found it
    (repo / "notes.txt").write_text("the user's edit, after the crash\n")

    again = _merge(repo)
    assert _finish(again) == 1  # the checkout has the user's edit: the result waits
    assert b"undid the interrupted update" in again.data, again.data
    assert b"left 1 file of " in again.data and b": notes.txt\n" in again.data
    assert tip(repo) == before and tip(repo, f"dag/{RUN}/_merged") != before
    assert (repo / "notes.txt").read_text() == "the user's edit, after the crash\n"
    assert (repo / "gone.txt").read_text() == "old\n"
    assert _status(repo) == " M notes.txt\n?? mine.txt\n"
    assert not (runs_dir(repo) / checkout_move.JOURNAL).exists()


def test_an_undo_killed_midway_is_finished_by_the_next_command(
    moving: tuple[Path, FilterGate], tmp_path: Path
) -> None:
    """The undo of a killed move is killed in turn, with its ``git checkout-index`` midway
    through writing ``gone.txt`` back: the next command finishes the undo (issue 11)."""
    repo, gate = moving
    _kill_at_gate(repo, gate, git_too=True)
    assert not (repo / "gone.txt").exists()  # git removed it: the undo writes it back
    held = CommandGate(tmp_path / "undo-gate", "checkout-index")
    undoing = _merge(repo, path=held.path)
    group = held.git_group()
    _killed(undoing)
    (repo / "gone.txt").write_bytes(b"ol")  # as far as checkout-index got: a start of it
    os.killpg(group, signal.SIGKILL)
    wait_gone(group)
    assert (runs_dir(repo) / checkout_move.JOURNAL).exists()  # the undo is not done yet

    again = _merge(repo)
    assert _finish(again) == 0, again.data
    assert b"undid the interrupted update" in again.data and b"left" not in again.data
    assert _status(repo) == "?? mine.txt\n"
    assert not (runs_dir(repo) / checkout_move.JOURNAL).exists()
    subjects = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects.count(f"Merge {branch('a')}: a") == 1


def _after_the_window(repo: Path) -> None:
    """Once the end marker has closed the window (dag and its git both gone), until the
    file system's clock has moved past it: what is written now is written after."""
    ended = runs_dir(repo) / checkout_move.ENDED
    wait_for(ended.exists, timeout=60, what="the end marker")
    probe = repo.parent / "clock-probe"
    wait_for(
        lambda: probe.write_bytes(b"") == 0 and probe.stat().st_mtime_ns > ended.stat().st_mtime_ns,
        timeout=10,
        what="the clock to move on",
    )


def test_an_edit_that_leaves_a_start_of_the_new_content_is_kept(
    moving: tuple[Path, FilterGate],
) -> None:
    """The user empties a file git had written whole before it was killed: the file now
    looks like one git began and was cut short, but it was changed after git was gone."""
    repo, gate = moving
    _kill_at_gate(repo, gate, git_too=True)
    _after_the_window(repo)
    assert (repo / "0-early.txt").read_text() == "early\n"
    (repo / "0-early.txt").write_text("")

    again = _merge(repo)
    assert _finish(again) == 1, again.data  # the user's file is in the way of the move
    assert b"left 1 file of " in again.data and b": 0-early.txt\n" in again.data, again.data
    assert (repo / "0-early.txt").read_text() == ""
    assert (repo / "gone.txt").read_text() == "old\n"  # what git did remove came back
    assert _status(repo) == "?? 0-early.txt\n?? mine.txt\n"
    assert not (runs_dir(repo) / checkout_move.ENDED).exists()


def test_a_truncated_large_file_is_removed_and_the_next_merge_completes(
    moving: tuple[Path, FilterGate],
) -> None:
    repo, gate = moving
    merging = _merge(repo)
    group = gate.git_group()
    resource.prlimit(group, resource.RLIMIT_FSIZE, (CUT, CUT))  # git dies of SIGXFSZ there
    resource.prlimit(group, resource.RLIMIT_CORE, (0, 0))  # and leaves no core file
    _killed(merging)
    assert gate.release()
    wait_gone(group)
    assert (repo / "a-big.bin").stat().st_size == CUT  # the truncated piece of issue 11
    assert "?? a-big.bin" in _status(repo)

    again = _merge(repo)
    assert _finish(again) == 0, again.data
    assert b"undid the interrupted update" in again.data
    assert (repo / "a-big.bin").read_bytes() == git_blob(repo, "main:a-big.bin")
    assert _status(repo) == "?? mine.txt\n"
    subjects = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects.count(f"Merge {branch('a')}: a") == 1


def _end_markers(repo: Path) -> list[int]:
    """The pids of the end markers of moves in ``repo`` (they wait on its move lock)."""
    lock = str(runs_dir(repo) / checkout_move.LOCK).encode()
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and lock in (entry / "cmdline").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def test_a_piece_left_when_everything_was_killed_is_named_as_dagspec_s(
    moving: tuple[Path, FilterGate],
) -> None:
    """dag, its git and the end marker all killed (a cgroup-wide kill): the window has no
    end, so the piece git cut short cannot be told from a user's file and is left; every
    later merge says an interrupted update left it, and what to do (issue 11)."""
    repo, gate = moving
    merging = _merge(repo)
    group = gate.git_group()
    resource.prlimit(group, resource.RLIMIT_FSIZE, (CUT, CUT))  # git dies of SIGXFSZ there
    resource.prlimit(group, resource.RLIMIT_CORE, (0, 0))
    markers = _end_markers(repo)
    assert markers
    for pid in markers:
        os.kill(pid, signal.SIGKILL)
    _killed(merging)
    assert gate.release()
    wait_gone(group)
    assert (repo / "a-big.bin").stat().st_size == CUT

    for _ in range(2):
        again = _merge(repo)
        assert _finish(again) == 1, again.data
        assert (
            b"untracked files the merge would overwrite (a-big.bin); a-big.bin was left by an "
            b"interrupted update of dagspec's: delete it if not yours"
        ) in again.data, again.data
    (repo / "a-big.bin").unlink()
    again = _merge(repo)
    assert _finish(again) == 0, again.data
    assert _status(repo) == "?? mine.txt\n"
    assert not (runs_dir(repo) / "checkout-move.left").exists()


def git_blob(repo: Path, rev: str) -> bytes:
    return subprocess.run(["git", "cat-file", "blob", rev], cwd=repo, capture_output=True).stdout


def test_a_killed_dag_s_git_finishes_and_the_next_command_waits_for_it(
    moving: tuple[Path, FilterGate],
) -> None:
    repo, gate = moving
    _kill_at_gate(repo, gate, git_too=False)  # its git holds on, at the gate
    again = _merge(repo)
    again.wait_for(b"waiting for git to finish updating the checkout")
    assert gate.release()
    assert _finish(again) == 0, again.data
    assert _status(repo) == "?? mine.txt\n"
    assert (repo / "a-big.bin").stat().st_size == BIG
    subjects = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects.count(f"Merge {branch('a')}: a") == 1


def test_files_and_index_written_but_the_branch_not_moved_is_finished(
    moving: tuple[Path, FilterGate],
) -> None:
    """git writes every file and the index, then cannot move the branch (a stale lock of
    it); the next command, once the lock is gone, moves it."""
    repo, gate = moving
    _kill_at_gate(repo, gate, git_too=False)
    ref_lock = repo / ".git" / "refs" / "heads" / "main.lock"
    ref_lock.write_text("")
    group = gate.git_group()
    assert gate.release()
    wait_gone(group)
    assert git(repo, "diff", "--cached", "--name-only") != ""  # index moved, branch not
    ref_lock.unlink()

    again = _merge(repo)
    assert _finish(again) == 0, again.data
    assert b"finished the update" in again.data
    assert _status(repo) == "?? mine.txt\n"
    subjects = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects.count(f"Merge {branch('a')}: a") == 1


def test_a_branch_git_cannot_move_leaves_the_checkout_as_it_was(
    moving: tuple[Path, FilterGate],
) -> None:
    repo, gate = moving
    (gate.dir / "taken").mkdir()  # nothing held: the filter passes through from the start
    before, status = tip(repo), _status(repo)
    (repo / ".git" / "refs" / "heads" / "main.lock").write_text("")
    merging = _merge(repo)
    assert _finish(merging) == 1
    assert tip(repo) == before and _status(repo) == status
    assert not (RunPaths(repo, RUN).runs_dir / checkout_move.JOURNAL).exists()


def _full_disk_git(directory: Path, *, killed: bool = False) -> str:
    """A ``git`` first on PATH whose ``merge`` can write no file past 15 MB, as on a disk
    that fills up: ``ulimit -f`` with SIGXFSZ ignored, so the write fails (EFBIG, as
    ENOSPC would) and git goes on, then exits on its own, not killed; ``killed``: not
    ignored, so that git dies of SIGXFSZ, as under a plain ``ulimit -f``. Returns the PATH
    entry."""
    real = shutil.which("git")
    (directory / "bin").mkdir(parents=True)
    wrapper = directory / "bin" / "git"
    deaf = "" if killed else "trap '' XFSZ; "
    wrapper.write_text(
        f'#!/bin/sh\ncase " $* " in *" merge "*)\n'
        f"{deaf}ulimit -f {CUT // 1024};;\nesac\n"
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(directory / "bin")


def test_a_disk_full_mid_update_is_undone_and_never_blamed_on_the_user(
    moving: tuple[Path, FilterGate], tmp_path: Path
) -> None:
    """git cannot write the 50 MB file (a full disk), writes the files after it, and exits
    1 with neither index nor branch moved: the same ``dag merge`` undoes what it wrote and
    says why the result waits; no file of dagspec's is left to look like the user's, and
    once there is room the next merge completes."""
    repo, gate = moving
    (gate.dir / "taken").mkdir()  # nothing held: the filter passes through from the start
    before = tip(repo)
    merging = _merge(repo, path=_full_disk_git(tmp_path / "full"))
    assert _finish(merging) == 1, merging.data
    assert b"undid the update of " in merging.data, merging.data
    assert b", which a failed write cut short; " in merging.data, merging.data
    assert b"interrupted" not in merging.data, merging.data
    assert b"git failed during the update of " in merging.data
    assert b"unable to write file a-big.bin); it was undone" in merging.data
    assert b"left" not in merging.data and b"uncommitted" not in merging.data
    assert b"Traceback" not in merging.data, merging.data.decode()
    assert tip(repo) == before and _status(repo) == "?? mine.txt\n"
    assert (repo / "gone.txt").read_text() == "old\n"
    assert not (runs_dir(repo) / checkout_move.JOURNAL).exists()

    again = _merge(repo)
    assert _finish(again) == 0, again.data
    assert (repo / "a-big.bin").read_bytes() == git_blob(repo, "main:a-big.bin")
    assert _status(repo) == "?? mine.txt\n"


def test_git_killed_by_the_file_size_limit_mid_update_is_not_called_interrupted(
    moving: tuple[Path, FilterGate], tmp_path: Path
) -> None:
    """Under a plain ``ulimit -f``, git dies of SIGXFSZ writing the 50 MB file: the merge
    said "undid the interrupted update" and "git was killed by SIGXFSZ", where no one
    interrupted anything. It now names the file size limit, as a full disk is named."""
    repo, gate = moving
    (gate.dir / "taken").mkdir()  # nothing held: the filter passes through from the start
    before = tip(repo)
    merging = _merge(repo, path=_full_disk_git(tmp_path / "full", killed=True))
    assert _finish(merging) == 1, merging.data
    said = merging.data.decode()
    assert ", which the file size limit (ulimit -f) cut short; `" in said, said
    assert (
        f"git reached the file size limit (ulimit -f; SIGXFSZ) during the update of {repo}; "
        "it was undone; once the limit is raised, `"
    ) in " ".join(said.split()), said
    assert "interrupted" not in said and "killed by" not in said, said
    assert tip(repo) == before and _status(repo) == "?? mine.txt\n"


def test_a_full_disk_at_the_end_of_a_merge_names_the_state_file_not_the_output(
    git_repo: Path,
) -> None:
    """``dag merge`` under a file size limit, as on a full disk: its git dies of SIGXFSZ
    writing HEAD's reflog, with the files and index written and ``HEAD.lock`` left; dagspec
    removes that stale lock and finishes the move, but cannot save the state file (Python
    ignores SIGXFSZ: the write fails with EFBIG). The one error line names that file, not
    "the output"; no lock is left to stop the next merge, which records the merge."""
    make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    paths = RunPaths(git_repo, RUN)
    recorded = paths.state_file.read_bytes()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))

    done = subprocess.run(
        [sys.executable, "-m", "dagspec", "merge", RUN],
        cwd=git_repo,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        preexec_fn=limit,
    )
    assert done.returncode == 1, done
    assert done.stderr.endswith(
        f"dag: error: cannot write {paths.state_file}: File too large: free some space, or "
        "raise the file size limit (ulimit -f), then run the command again\n"
    ), done.stderr
    assert "output" not in done.stderr and "Traceback" not in done.stderr
    assert paths.state_file.read_bytes() == recorded and _status(git_repo) == ""
    assert not list((git_repo / ".git").glob("**/*.lock"))

    again = _merge(git_repo)
    assert _finish(again) == 0, again.data.decode()
    assert (git_repo / "a.txt").read_text() == "a\n" and _status(git_repo) == ""
    subjects = git(git_repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects.count(f"Merge {branch('a')}: a") == 1
