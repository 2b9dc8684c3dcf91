"""The run's record: round trips, both readers, atomic saves, refusals, and the lock."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from dagspec.cli import RunFlags
from dagspec.errors import StateError
from dagspec.lifecycle import RunOptions, RunState, RunStatus, SpecState, SpecStatus
from dagspec.state import driver_alive, dump, load, load_text, run_lock, save, settled, utcnow
from dagspec.workspace import RunPaths
from tests import run_states
from tests.conftest import ROOT


def _state(n: int = 3, **changes: object) -> RunState:
    specs = tuple(
        SpecState(id=f"s{i}", layer="L0", depends_on=("s0",) if i else (), error='a "b"\nc é')
        for i in range(n)
    )
    state = RunState(
        format=1,
        run_id="r1",
        dag_file="dag.yaml",
        dag_name="demo",
        repo="/repo",
        status=RunStatus.RUNNING,
        base_branch="main",
        base_commit="0" * 40,
        started_at=utcnow(),
        specs=specs,
    )
    return attrs.evolve(state, **changes)


def test_dump_starts_with_format_and_round_trips_through_both_readers() -> None:
    state = _state()
    text = dump(state)
    assert text.startswith("format: 1\n")
    assert load_text(text, "f") == state
    # A person's edit (a comment) leaves the fast path; the YAML reader gives the same.
    assert load_text(text.replace("format: 1", "format: 1  # edited"), "f") == state
    empty = _state(0)
    assert load_text(dump(empty), "f") == empty


def test_a_changed_spec_is_written_anew() -> None:
    state = _state()
    dump(state)
    changed = state.with_spec(attrs.evolve(state.spec("s1"), status=SpecStatus.COMPLETED))
    assert load_text(dump(changed), "f").spec("s1").status is SpecStatus.COMPLETED
    assert load_text(dump(state), "f").spec("s1").status is SpecStatus.PENDING


def test_save_is_atomic_and_keeps_state_out_of_git(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path, "r1")
    save(_state(), paths.state_file)
    saved = _state(5)  # once: two calls a second apart start at different times
    save(saved, paths.state_file)
    assert load(paths) == saved
    assert sorted(p.name for p in paths.runs_dir.iterdir()) == [".gitignore", "r1.yaml"]
    assert "*" in (paths.runs_dir / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("format: 2\n", "was written by a newer dagspec (format 2"),
        ("format: 1\nrun_id: [\n", "is damaged"),
        ("run_id: x\n", "is damaged: it has no 'format' key"),
        ("format: 1\nrun_id: x\n", "is damaged (required field missing @ $.dag_file"),
    ],
)
def test_newer_and_damaged_files_are_refused_by_name_and_left_alone(
    tmp_path: Path, text: str, message: str
) -> None:
    paths = RunPaths(tmp_path, "r1")
    paths.state_file.parent.mkdir(parents=True)
    paths.state_file.write_text(text)
    with pytest.raises(StateError, match=r"^" + str(paths.state_file)) as info:
        load(paths)
    assert message in str(info.value)
    assert paths.state_file.read_text() == text


def test_a_missing_run_points_to_dag_list(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"no run 'nope' .* `dag list` shows the runs"):
        load(RunPaths(tmp_path, "nope"))


def test_settled_marks_a_dead_drivers_running_specs_interrupted(tmp_path: Path) -> None:
    state = _state(repo=str(tmp_path))
    running = state.with_spec(attrs.evolve(state.spec("s0"), status=SpecStatus.RUNNING))
    dead = attrs.evolve(running, driver_pid=2**22 + 12345)
    seen = settled(dead)
    assert seen.status is RunStatus.INTERRUPTED
    assert seen.spec("s0").status is SpecStatus.INTERRUPTED
    assert seen.spec("s1").status is SpecStatus.PENDING
    alive = attrs.evolve(running, driver_pid=os.getpid())
    assert settled(alive).status is RunStatus.INTERRUPTED  # its directory is not locked
    run_states.save(alive)  # locked by this process, as by a driver
    assert settled(alive) == alive


def test_only_the_flags_given_override_the_options() -> None:
    assert RunFlags().overrides() == {}
    given = RunFlags(max_parallel=2, merge=False, fail_fast=None).overrides()
    assert given == {"max_parallel": 2, "parallel": True, "merge": False}  # a limit implies it
    assert set(RunFlags._fields) == set(attrs.fields_dict(RunOptions))


HOLDER = """
import sys
from pathlib import Path
from dagspec.state import run_lock
from dagspec.workspace import RunPaths
with run_lock(RunPaths(Path(sys.argv[1]), "r1")):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def lock_held_elsewhere(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding run r1's lock, SIGKILLed at the end."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()


@pytest.mark.slow
def test_the_lock_names_its_holder_and_is_taken_over_after_sigkill(tmp_path: Path) -> None:
    with (
        lock_held_elsewhere(tmp_path) as holder,
        pytest.raises(StateError, match=f"being driven by process {holder.pid}"),
        run_lock(RunPaths(tmp_path, "r1")),
    ):
        pass
    with run_lock(RunPaths(tmp_path, "r1")):
        assert (tmp_path / ".autospec/state/dag-runs/r1/lock").read_text() == f"{os.getpid()}\n"


def test_a_worktree_that_links_out_of_the_runs_worktrees_is_refused(tmp_path: Path) -> None:
    """A forged state whose worktree is a link to somewhere else is not loaded (issue 11):
    agents would run, and cleanup remove, there."""
    repo = tmp_path / "repo"
    paths = RunPaths(repo, "r1")
    elsewhere = tmp_path / "someone-elses"
    elsewhere.mkdir()
    place = tmp_path / "repo.worktrees" / "r1" / "s0"
    place.parent.mkdir(parents=True)
    place.symlink_to(elsewhere)
    state = _state(1, repo=str(repo))
    state = state.with_spec(attrs.evolve(state.spec("s0"), worktree=str(place)))
    paths.state_file.parent.mkdir(parents=True)
    paths.state_file.write_text(dump(state))
    with pytest.raises(StateError, match=f"a link to {elsewhere}\\), outside its worktrees"):
        load(paths)
    place.unlink()  # as recorded, not there: nothing to be misled by
    assert load(paths).spec("s0").worktree == str(place)


@pytest.mark.parametrize("linked", ["the spec's place", "the run's worktrees"])
def test_a_place_not_recorded_yet_that_links_away_is_refused(tmp_path: Path, linked: str) -> None:
    """No worktree recorded, but the place the drive would make it is a link: to somewhere
    else, or (the run's worktrees directory itself a link) into another run's."""
    repo, root = tmp_path / "repo", tmp_path / "repo.worktrees"
    for run_id in ("r1", "r2"):
        paths = RunPaths(repo, run_id)
        paths.state_file.parent.mkdir(parents=True, exist_ok=True)
        paths.state_file.write_text(dump(_state(1, repo=str(repo), run_id=run_id)))
    root.mkdir()
    if linked == "the spec's place":
        (tmp_path / "elsewhere").mkdir()
        (root / "r2").mkdir()
        (root / "r2" / "s0").symlink_to(tmp_path / "elsewhere")
        match = "outside its worktrees"
    else:
        (root / "r1").mkdir()
        (root / "r2").symlink_to("r1")
        match = "of run 'r1'"
    with pytest.raises(StateError, match=match):
        load(RunPaths(repo, "r2"))
    assert load(RunPaths(repo, "r1")).run_id == "r1"


def _worktrees_moved_and_linked_back(tmp_path: Path, run_id: str, target: Path) -> RunPaths:
    """Run ``run_id`` of ``tmp_path/repo`` with its worktrees ``s0`` (recorded) and ``s1``
    (not yet) in ``target``, its worktrees directory ``repo.worktrees/<run_id>`` a link to
    it, as after ``mv`` to another disk and ``ln -s``."""
    repo, root = tmp_path / "repo", tmp_path / "repo.worktrees"
    (target / "s0").mkdir(parents=True, exist_ok=True)
    root.mkdir(exist_ok=True)
    (root / run_id).symlink_to(target)
    state = _state(2, repo=str(repo), run_id=run_id)
    state = state.with_spec(attrs.evolve(state.spec("s0"), worktree=str(root / run_id / "s0")))
    paths = RunPaths(repo, run_id)
    paths.state_file.parent.mkdir(parents=True, exist_ok=True)
    paths.state_file.write_text(dump(state))
    return paths


def test_a_runs_worktrees_moved_and_linked_back_are_its_own(tmp_path: Path) -> None:
    """``mv repo.worktrees/r1 /disk2/r1 && ln -s /disk2/r1 repo.worktrees/r1``: the run was
    refused as "a state file copied from another run", and told to remove its state file.
    Moved under another name, it is told to keep the name, and nothing to remove."""
    paths = _worktrees_moved_and_linked_back(tmp_path, "r1", tmp_path / "disk2" / "r1")
    assert load(paths).spec("s0").worktree == str(tmp_path / "repo.worktrees" / "r1" / "s0")
    renamed = _worktrees_moved_and_linked_back(tmp_path, "r2", tmp_path / "disk2" / "r2-old")
    with pytest.raises(StateError) as refused:
        load(renamed)
    assert str(refused.value) == (
        f"the worktrees of run 'r2', {tmp_path}/repo.worktrees/r2, are a link to "
        f"{tmp_path}/disk2/r2-old: worktrees moved elsewhere and linked back keep the run's id "
        f"as their name: rename {tmp_path}/disk2/r2-old to {tmp_path}/disk2/r2"
    )


@pytest.mark.parametrize("into", ["where r1's were moved", "a directory named r1"])
def test_worktrees_linked_into_another_runs_are_still_refused(tmp_path: Path, into: str) -> None:
    """A copy of r1's state, its run id edited, with its worktrees a link to where r1's
    were moved, or to a directory named as r1's are: not run r2; r1 is still r1."""
    moved = tmp_path / "disk2" / "r1"
    _worktrees_moved_and_linked_back(tmp_path, "r1", moved)
    target = moved if into == "where r1's were moved" else tmp_path / "disk3" / "r1"
    copy = _worktrees_moved_and_linked_back(tmp_path, "r2", target)
    with pytest.raises(StateError, match=r"r2 \(a link to .*, of run 'r1'\): a state file copied"):
        load(copy)
    assert load(RunPaths(tmp_path / "repo", "r1")).run_id == "r1"


@pytest.mark.slow
def test_a_run_directory_moved_and_linked_back_keeps_its_driver(tmp_path: Path) -> None:
    """``.autospec/state/dag-runs/r1`` moved to another disk and linked back: its driver,
    holding the lock through the link, was taken for dead (``dag status``: interrupted,
    "the driver died", while it ran). A copy of the state whose directory is a link to the
    original's (or to where it was moved) is still not driven by the original's driver."""
    paths = RunPaths(tmp_path, "r1")
    moved = tmp_path / "disk2" / "r1"
    moved.mkdir(parents=True)
    paths.run_dir.parent.mkdir(parents=True)
    paths.run_dir.symlink_to(moved)
    with lock_held_elsewhere(tmp_path) as holder:
        driven = _state(1, repo=str(tmp_path), driver_pid=holder.pid)
        paths.state_file.write_text(dump(driven))
        assert driver_alive(driven)
        for link in (moved, paths.run_dir, tmp_path / "disk3" / "r1"):
            link.mkdir(parents=True, exist_ok=True)
            copy = RunPaths(tmp_path, "r2")
            copy.state_file.write_text(dump(attrs.evolve(driven, run_id="r2")))
            copy.run_dir.symlink_to(link)
            assert not driver_alive(attrs.evolve(driven, run_id="r2"))
            copy.run_dir.unlink()


@pytest.mark.parametrize("loop", ["the run's worktrees", "a spec's place"])
def test_a_loop_of_links_where_a_worktree_would_be_is_refused_not_a_crash(
    tmp_path: Path, loop: str
) -> None:
    repo, root = tmp_path / "repo", tmp_path / "repo.worktrees"
    paths = RunPaths(repo, "r2")
    paths.state_file.parent.mkdir(parents=True)
    paths.state_file.write_text(dump(_state(1, repo=str(repo), run_id="r2")))
    root.mkdir()
    if loop == "a spec's place":
        (root / "r2").mkdir()
        (root / "r2" / "s0").symlink_to("s0")
    else:
        (root / "r2").symlink_to("r2")
    with pytest.raises(StateError, match="symbolic link that leads back to itself") as info:
        load(paths)
    looped = root / "r2" / ("s0" if loop == "a spec's place" else "")
    assert str(info.value).startswith(f"{str(looped).rstrip('/')} is a symbolic link")
    assert "remove it" in str(info.value) and "state file" not in str(info.value)


@pytest.mark.slow
def test_a_deleted_lock_file_still_names_the_driver(tmp_path: Path) -> None:
    """``<run>/lock`` deleted during a run: the refusal names the holder from /proc/locks,
    never ``process unknown`` (issue 11)."""
    with lock_held_elsewhere(tmp_path) as holder:
        (tmp_path / ".autospec/state/dag-runs/r1/lock").unlink()
        with pytest.raises(StateError) as info, run_lock(RunPaths(tmp_path, "r1")):
            pass
    said = str(info.value)
    if Path("/proc/locks").exists():
        assert f"being driven by process {holder.pid}: " in said
        assert f"(kill {holder.pid})" in said
    assert "unknown" not in said
