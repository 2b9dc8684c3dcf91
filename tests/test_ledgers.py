"""What the runs of one repository must not both take, written down in its shared git
directory (``dagspec.ledgers``), so that runs at once, from one checkout or from the main
checkout and a linked worktree of it, never take the same: spec numbers
(``Bookkeeping.hand_out``) and run ids (``run_ids.unused``, ``run_ids.claim``)."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dagspec import ledgers, preflight, run_ids
from dagspec.bookkeeping import Bookkeeping
from dagspec.dagfile import load_dag
from dagspec.errors import DagspecError
from dagspec.lifecycle import RunOptions
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.engine_support import dag_text
from tests.fake_autospec_fixture import wait_for


def _book(checkout: Path) -> Bookkeeping:
    return Bookkeeping(checkout, sign=False, identity={}, branches={}, integration=None, floor=0)


@pytest.fixture
def linked(git_repo: Path) -> Path:
    path = git_repo.parent / "linked"
    git(git_repo, "worktree", "add", "-q", "-b", "side", str(path))
    return path


def test_the_shared_git_directory_of_a_linked_worktree_is_the_main_checkouts(
    git_repo: Path, linked: Path
) -> None:
    assert ledgers.shared_dir(git_repo).resolve() == (git_repo / ".git").resolve()
    assert ledgers.shared_dir(linked).resolve() == (git_repo / ".git").resolve()


def test_runs_of_one_repository_never_hand_out_the_same_number(
    git_repo: Path, linked: Path, tmp_path: Path
) -> None:
    """Two drives, one from each checkout, each knowing only its own numbers (its
    ``floor``): each number is above every one either handed out."""
    here, there = _book(git_repo), _book(linked)
    worktrees = [tmp_path / name for name in ("a", "b", "c")]
    for path in worktrees:
        path.mkdir()
    assert here.hand_out(worktrees[0], 0, "ra", "alpha") == 1
    assert there.hand_out(worktrees[1], 0, "rb", "banana") == 2
    assert here.hand_out(worktrees[2], 0, "ra", "cherry") == 3
    assert (worktrees[1] / "specs" / "001-reserved-by-dagspec").is_dir()
    ledger = (git_repo / ".git" / ledgers.SPEC_NUMBERS).read_text()
    assert ledger == "001 ra alpha\n002 rb banana\n003 ra cherry\n"


def test_a_number_waits_for_the_run_that_holds_the_ledger(git_repo: Path, tmp_path: Path) -> None:
    """Another run holds the ledger's lock (here: the test) and writes its number down:
    this run's number, handed out once the lock is free, is above it."""
    ledger = git_repo / ".git" / ledgers.SPEC_NUMBERS
    fd = os.open(ledger, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)
    got: list[int] = []
    waiting = threading.Thread(
        target=lambda: got.append(_book(git_repo).hand_out(tmp_path, 0, "r", "a"))
    )
    waiting.start()
    wait_for(lambda: _blocked_on(ledger), timeout=60, what="the hand-out waiting for the lock")
    assert got == []
    os.write(fd, b"007 other x\n")
    os.close(fd)
    waiting.join(timeout=60)
    assert got == [8]


def _blocked_on(path: Path) -> bool:
    """Whether a process waits for an ``flock`` of ``path`` (proc(5): ``/proc/locks``
    lists a waiter with ``->``)."""
    inode = f":{path.stat().st_ino} "
    locks = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and "FLOCK" in line and inode in line for line in locks)


def test_a_ledger_that_cannot_be_written_is_one_line_naming_it(
    git_repo: Path, tmp_path: Path
) -> None:
    (git_repo / ".git" / ledgers.SPEC_NUMBERS).mkdir()
    with pytest.raises(
        DagspecError,
        match=r"cannot read or write .*dagspec-spec-numbers \(Is a directory\)",
    ) as caught:
        _book(git_repo).hand_out(tmp_path, 0, "r", "a")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "specs").exists()


# --- run ids ---------------------------------------------------------------------------------

ID = "t-20261201-030000"


@pytest.fixture
def same_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run id made now is ``ID``: runs started in the same second."""
    monkeypatch.setattr(run_ids, "utcnow", lambda: datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC))


@pytest.mark.usefixtures("same_second")
def test_a_run_id_another_checkout_took_is_not_taken_again(git_repo: Path, linked: Path) -> None:
    """Each checkout keeps its runs' state in its own ``.autospec/state``: the id a run of
    the linked worktree took was free here, and both runs used ``dag/<id>/...`` branches."""
    assert run_ids.unused(linked, "t", None) == ID
    assert run_ids.claim(RunPaths(linked, ID))
    assert not run_ids.claim(RunPaths(git_repo, ID))  # the same second, here: refused
    assert not RunPaths(git_repo, ID).run_dir.exists()
    assert run_ids.unused(git_repo, "t", None) == f"{ID}-2"
    assert run_ids.claim(RunPaths(git_repo, f"{ID}-2"))


@pytest.mark.usefixtures("same_second")
def test_a_run_id_with_branches_is_not_taken_again(git_repo: Path) -> None:
    """A run of another checkout, started before run ids were written down: its branches."""
    git(git_repo, "branch", f"dag/{ID}/a")
    assert run_ids.unused(git_repo, "t", None) == f"{ID}-2"


@pytest.mark.usefixtures("same_second")
def test_a_run_id_ledger_that_cannot_be_written_leaves_nothing_of_the_run(git_repo: Path) -> None:
    (git_repo / ".git" / ledgers.RUN_IDS).mkdir()
    with pytest.raises(DagspecError, match=r"cannot read or write .*dagspec-run-ids"):
        run_ids.claim(RunPaths(git_repo, ID))
    assert not RunPaths(git_repo, ID).run_dir.exists()


def test_too_many_open_files_says_what_every_place_that_opens_says(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE is the run's open-file limit, not the ledger's fault: the spec's error says
    to raise the limit, as every other place that opens does (errors.too_many_open_files)."""

    def exhausted(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(ledgers.os, "open", exhausted)
    with pytest.raises(
        DagspecError,
        match=r"too many open files while opening .*dagspec-spec-numbers \(EMFILE\): "
        r"raise the open-file limit \(ulimit -n\)",
    ):
        _book(git_repo).hand_out(tmp_path, 0, "r", "a")


@pytest.mark.slow  # preflight's every check
@pytest.mark.usefixtures("same_second")
def test_an_id_taken_by_another_checkout_during_preflight_moves_on_to_the_next(
    runnable: Path, linked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of the linked worktree takes the id this run made (and makes its branches)
    while this run's preflight looks: the made id moves on to ``-2``, and the other run's
    branches are no problem of this one (not "the branch names this run needs are
    taken", for an id the user never gave)."""
    (runnable / "dag.yaml").write_text(dag_text("a"))
    dag = load_dag(runnable / "dag.yaml", repo=runnable)
    looked = preflight.results

    def meanwhile(planned: preflight.Planned) -> Any:
        if not RunPaths(linked, ID).run_dir.exists():
            assert run_ids.claim(RunPaths(linked, ID))
            git(runnable, "branch", f"dag/{ID}/a")
        return looked(planned)

    monkeypatch.setattr(preflight, "results", meanwhile)
    planned = preflight.before_run(runnable, dag, RunOptions(), None, dry_run=False)
    assert planned.run_id == f"{ID}-2"
    assert RunPaths(runnable, f"{ID}-2").run_dir.is_dir()
    assert not RunPaths(runnable, ID).run_dir.exists()


_ADD = """
import sys
from pathlib import Path
from dagspec import ledgers
from dagspec.errors import DagspecError
try:
    with ledgers.held(Path(sys.argv[1]), ledgers.RUN_IDS) as taken:
        taken.add(sys.argv[2])
except DagspecError as error:
    sys.exit(str(error))
"""


def _add(
    repo: Path, line: str, *, size_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``Ledger.add`` of ``line`` in a process of its own, under ``ulimit -f`` if given."""

    def limit() -> None:
        if size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (size_limit, size_limit))

    command = [sys.executable, "-c", _ADD, str(repo), line]
    return subprocess.run(command, capture_output=True, text=True, preexec_fn=limit, check=False)


def test_a_line_the_file_size_limit_cuts_is_taken_back_and_named(git_repo: Path) -> None:
    """``ulimit -f``: os.write writes part of the line; the half line is not left for the
    next id to be glued to, and the one line of the error names the ledger."""
    ledger = git_repo / ".git" / ledgers.RUN_IDS
    before = "".join(f"old-run-{n:04d}\n" for n in range(78))  # 1014 bytes
    ledger.write_text(before)
    cut = _add(git_repo, "t-20261201-030000", size_limit=1024)
    assert cut.returncode == 1
    assert cut.stderr == (
        f"cannot read or write {ledger} (File too large), where the runs of this repository "
        "write down what they took so that runs at once never take the same: free space on "
        "its disk, or raise the file-size limit (ulimit -f)\n"
    )
    assert ledger.read_text() == before
    assert _add(git_repo, "t-20261201-030001").returncode == 0
    assert ledger.read_text().splitlines()[-1] == "t-20261201-030001"


def test_a_line_a_killed_run_left_without_its_newline_stays_apart(git_repo: Path) -> None:
    ledger = git_repo / ".git" / ledgers.RUN_IDS
    ledger.write_text("old-run\nt-2026120")  # its writer killed midway
    assert _add(git_repo, ID).returncode == 0
    assert ledger.read_text() == f"old-run\nt-2026120\n{ID}\n"
    assert ID in ledgers.read(git_repo, ledgers.RUN_IDS)
