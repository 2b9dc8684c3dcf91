"""``dag merge RUN_ID``: merge a run's completed specs into the base branch (README, Merging)."""

from __future__ import annotations

from pathlib import Path

import attrs

from dagspec import checkout_move, driving, faults, merge_asked, onto_advice, relocate
from dagspec.lifecycle import RunState
from dagspec.state import load, run_lock, save, settled
from dagspec.workspace import RunPaths, check_run_id


def merge(
    repo: Path, run_id: str, *, dry_run: bool, cleanup: bool, onto_current: bool = False
) -> int:
    """Merge (or with ``dry_run`` predict, writing nothing) and print the report; with
    ``cleanup``, then remove the merged specs' worktrees; with ``onto_current``, replay the
    specs onto a rewritten base branch (``dagspec.replay``). Exit 1 when a completed spec
    is left off the base branch.

    A dry run takes no lock: it writes nothing, so it cannot disturb a process driving the
    run, and it may be asked while one does (as ``dag status`` may).
    """
    paths = RunPaths(repo, check_run_id(run_id))
    run = load(paths)  # a missing run is refused before the lock creates its directory
    if dry_run:
        _, code, _ = driving.merge_and_report(
            paths, run, dry_run=True, cleanup=False, onto_current=onto_current
        )
        return code
    checkout_move.finish_interrupted(repo)
    with run_lock(paths):
        run = settled(relocate.arrive(paths, load(paths)))
        if not run.options.merge:  # recorded before the merge can fail (``_asked``)
            run = _asked(paths, run)
        merged, code, _ = driving.merge_and_report(
            paths, run, dry_run=False, cleanup=cleanup, onto_current=onto_current
        )
    if not cleanup and not run.options.keep_worktrees:
        _cleanup_hint(repo, merged)
    return code


def _asked(paths: RunPaths, run: RunState) -> RunState:
    """The run of ``--no-merge``, recorded as one to merge now that a merge of it is asked
    for: ``dag status`` exits 0 for it only until then (README). Saved first, so that a
    merge that fails (a signer too slow, a second Ctrl-C, a state that cannot be saved once
    the base branch moved) leaves it 1, as ``dag run`` would have ended."""
    asked = attrs.evolve(run, options=attrs.evolve(run.options, merge=True))
    merge_asked.mark(paths)  # kept even if the state cannot be saved (a file size limit)
    save(asked, paths.state_file)
    merge_asked.recorded(paths)
    return asked


def _cleanup_hint(repo: Path, run: RunState) -> None:
    """How to remove what the merged specs left, which ``dag run`` removes when it merges
    at its end and ``dag merge`` only with ``--cleanup`` (README, Merging); with
    ``--onto-current`` when the base branch was rewritten (plain ``dag merge`` refuses)."""
    if any(s.merged and s.worktree for s in run.specs):
        onto = onto_advice.rewritten_now(repo, run)
        faults.say(
            "hint: the merged specs' worktrees and branches stay: "
            f"`{onto_advice.merge_command(run.run_id, onto=onto)} --cleanup` removes them, "
            "as the end of `dag run` does\n"
        )
