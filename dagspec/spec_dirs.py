"""Spec numbers and spec directories: the ``NNN-name`` directories autospec makes in ``specs/``.

autospec numbers a new spec from what it sees (contract §1.5); dagspec steers it so that
parallel specs get distinct numbers, and finds the directory specify made afterwards.
autospec also reads a spec directory's number back from its name (``unreadable``).
Every number handed out is written down in the repository's shared git directory
(``ledgers.SPEC_NUMBERS``), so that runs at once (from one checkout, or from linked
worktrees of it) never hand out the same one.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from dagspec import git_refs, git_worktree
from dagspec.errors import Problem

RESERVATION = "reserved-by-dagspec"
_NUMBERED = re.compile(r"(\d{3,})-")
_READABLE = re.compile(r"\d{3}-.")  # autospec's ^(\d{3})-(.+)$


def reserve_number(repo: Path, worktree: Path, floor: int) -> int:
    """Make the ``NNN`` that specify picks in ``worktree`` greater than ``floor``; return it.

    autospec numbers a new spec 1 + the highest ``NNN-`` prefix among the directories in
    ``specs/`` and the local and remote branch names it sees (contract §1.5), so parallel
    worktrees cut from one commit all pick the same number. The orchestrator hands out
    numbers in the order it starts specs (``floor`` is the last one given); to steer autospec
    to number N it creates the empty directory ``specs/<N-1>-reserved-by-dagspec``. N is
    above every number in ``specs/`` and in branch names, so a version that counts branches
    (v0.7.3) and one that cannot (v0.10.x in a worktree) both pick N. Nothing of it can be
    committed: git does not track empty directories.
    ``release_number`` removes it once the agent has exited. A drive reads the branch
    names once instead (``Bookkeeping``) and uses ``highest_in_specs`` and
    ``place_reservation``.
    """
    number = max(highest_in_specs(worktree), *_numbers(git_refs.branch_names(repo)), floor) + 1
    place_reservation(worktree, number)
    return number


def highest_handed_out(lines: Iterable[str]) -> int:
    """The highest spec number in the lines of the repository's ledger of them
    (``ledgers.SPEC_NUMBERS``: ``NNN run-id spec-id`` each); 0: none."""
    firsts = (line.split(" ", 1)[0] for line in lines)
    return max((int(first) for first in firsts if first.isdigit()), default=0)


def handed_out(number: int, run_id: str, spec_id: str) -> str:
    """The ledger's line for ``number``, handed out to ``spec_id`` of run ``run_id``."""
    return f"{number:03d} {run_id} {spec_id}"


def highest_in_specs(worktree: Path) -> int:
    """The highest ``NNN`` among the directories in the worktree's ``specs/`` (0: none)."""
    specs = worktree / "specs"
    return max(_numbers(p.name for p in specs.iterdir()) if specs.is_dir() else [], default=0)


def place_reservation(worktree: Path, number: int) -> None:
    """Steer specify in ``worktree`` to ``number`` (``reserve_number``): the empty directory
    ``specs/<number-1>-reserved-by-dagspec``, unless ``specs/`` has that number already."""
    if number - 1 > highest_in_specs(worktree):
        (worktree / "specs" / f"{number - 1:03d}-{RESERVATION}").mkdir(parents=True, exist_ok=True)


def release_number(worktree: Path) -> None:
    """Remove the reservation directories (only when empty: anything inside is not ours)."""
    for placeholder in (worktree / "specs").glob(f"*-{RESERVATION}"):
        if placeholder.is_dir() and not any(placeholder.iterdir()):
            placeholder.rmdir()


def is_numbered(name: str) -> bool:
    """Whether ``name`` starts like autospec's spec directories and branches: ``NNN-``."""
    return _NUMBERED.match(name) is not None


def number_of(name: str | None) -> int:
    """The ``NNN`` of ``NNN-name`` (or ``specs/NNN-name``); 0 when it has none."""
    match = _NUMBERED.match(PurePosixPath(name).name) if name else None
    return int(match[1]) if match else 0


def _numbers(names: Iterable[str]) -> list[int]:
    return [number_of(name) for name in names if _NUMBERED.match(name)]


def new_spec_dir(
    worktree: Path,
    base_commit: str,
    known: Iterable[str],
    base_dirs: Callable[[], Iterable[str]] | None = None,
) -> str | None:
    """The spec directory specify made here: one under ``specs/`` that the base commit does
    not have and no other spec of the run owns (``known``, names); the newest if several.
    ``base_dirs`` gives the base commit's directories when the caller knows them
    (``Bookkeeping.base_dirs``); else git is asked."""
    specs = worktree / "specs"
    if not specs.is_dir():
        return None
    in_base = base_dirs() if base_dirs else git_worktree.tree_dirs(worktree, base_commit, "specs")
    old = {*in_base, *known}
    fresh = [
        p
        for p in specs.iterdir()
        if p.is_dir() and p.name not in old and not p.name.endswith(RESERVATION)
    ]
    return max(fresh, key=lambda p: p.stat().st_mtime_ns).name if fresh else None


def discard_spec_dir(worktree: Path, name: str) -> bool:
    """Remove a spec directory specify left unfinished (contract §1.6), unless git tracks
    something in it: then it is not the agent's to throw away. True when it is gone."""
    path = worktree / "specs" / name
    if path.is_dir() and git_worktree.tracked_files(worktree, f"specs/{name}"):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def unreadable(features: Iterable[tuple[str, int]], repo: Path, label: str) -> list[Problem]:
    """A problem (file ``label``, the feature's line) for each feature ``(id, line)`` whose
    ``specs/<id>/spec.yaml`` exists in ``repo`` under a name autospec cannot read.

    Such a feature is continued in that directory (README, The DAG file), and autospec reads
    a spec directory's number from its name: its lookup of ``--spec`` and its detection of
    the current spec take ``^(\\d{3})-(.+)$`` apart and stop with ``could not parse spec
    directory name`` otherwise (upstream ``internal/spec/spec.go``: ``GetSpecMetadata``,
    ``DetectCurrentSpec``). Found when the DAG is checked, before any agent worked on it.
    """
    specs = repo / "specs"
    bad = [
        (spec_id, line)
        for spec_id, line in features
        if not _READABLE.match(spec_id) and (specs / spec_id / "spec.yaml").is_file()
    ]
    number = 1 + max((number_of(p.name) for p in specs.iterdir()), default=0) if bad else 0
    return [
        Problem(
            label,
            line,
            f"feature '{spec_id}' goes on from specs/{spec_id}/, a name autospec cannot read "
            f"(a spec directory's name starts with its number, NNN-): rename the directory and "
            f"the feature, e.g. to {number + n:03d}-{spec_id}, or remove specs/{spec_id}/ "
            "to have the feature specified afresh",
        )
        for n, (spec_id, line) in enumerate(bad)
    ]
