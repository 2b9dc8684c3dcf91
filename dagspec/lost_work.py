"""A spec whose work is no longer in the repository: its merge dropped from the base branch
(a reset), that merge commit pruned since (``git gc --prune=now``), and no branch holding
its work. No ``dag merge`` can bring it back: it is recorded failed, saying so, so that
``dag retry`` does it again (or ``dag cleanup --forget`` forgets it) and ``dag status``
sends the user there, not round to ``dag merge`` again (README, Merging)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import attrs

from dagspec.lifecycle import RunState, RunStatus, SpecStatus


def reason(run_id: str, spec_id: str, commit: str | None, *, with_: tuple[str, ...] = ()) -> str:
    """Why the spec failed, and what to do: one line. ``with_``: the specs lost with it
    that it depends on, which ``dag retry`` must do again too, or it leaves it blocked."""
    merge = f"its merge {commit[:12]}" if commit else "its merge"
    retry = " ".join([*with_, spec_id])
    return (
        f"its work is no longer in this repository ({merge} was dropped from the base branch "
        f"and pruned by git gc, and no branch holds it): `dag retry {run_id} {retry}` does "
        f"it again, or `dag cleanup {run_id} --forget` forgets it"
    )


def retry_together(run: RunState, spec_ids: Collection[str], spec_id: str) -> tuple[str, ...]:
    """Those of ``spec_ids`` (lost together) that ``spec_id`` depends on, directly or
    through another, in the run's order: a retry of it alone would leave it blocked."""
    found: set[str] = set()
    todo = [spec_id]
    while todo:
        for dep in run.spec(todo.pop()).depends_on:
            if dep in spec_ids and dep not in found:
                found.add(dep)
                todo.append(dep)
    return tuple(s.id for s in run.specs if s.id in found)


def record(run: RunState, lost: Mapping[str, str | None]) -> RunState:
    """The specs of ``lost`` (id: its lost merge commit) recorded failed, not merged; the
    run failed with them, as a drive that failed them would have ended."""
    before = run
    for spec_id, commit in lost.items():
        spec = run.spec(spec_id)
        with_ = retry_together(before, lost.keys(), spec_id)
        failed = attrs.evolve(
            spec,
            status=SpecStatus.FAILED,
            error=reason(run.run_id, spec_id, commit, with_=with_),
            merged=False,
            merge_commit=None,
            dropped_merge=commit,
        )
        run = run.with_spec(failed)
    if lost and run.status is RunStatus.COMPLETED:
        run = attrs.evolve(run, status=RunStatus.FAILED)
    return run
