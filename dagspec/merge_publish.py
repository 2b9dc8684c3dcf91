"""Publishing a run's merges (:mod:`dagspec.merge`): the base branch moved once, by
compare-and-swap, to the chain's head, and the user's checkout of it fast-forwarded only
when that is safe; otherwise the result waits on ``dag/<run>/_merged`` (parked) for the
next ``dag merge``.
"""

from __future__ import annotations

import contextlib
import signal
from functools import partial
from pathlib import Path

import attrs

from dagspec import (
    checkout_move,
    checkout_safety,
    git_merge,
    git_refs,
    git_said,
    git_worktree,
    onto_advice,
    procgroup,
)
from dagspec.console import dag_command
from dagspec.errors import DagspecError, GitError
from dagspec.lifecycle import RunState, SpecStatus
from dagspec.merge_chain import Chain, base_tip, report_of
from dagspec.merge_report import MergeReport
from dagspec.workspace import merged_branch


def publish(repo: Path, state: RunState, chain: Chain) -> MergeReport | None:
    """Move the base branch (and its checkout) to the chain's head, or park the head on
    ``dag/<run>/_merged``. None when the base branch moved meanwhile: build again."""
    if chain.head == chain.base:
        _drop_stale_parked(repo, state, chain)
        return report_of(state, chain)
    checkout, busy = _checkout_of(repo, state.base_branch)
    if busy is not None:
        return _park(repo, state, chain, busy.why, until=busy.until)
    if checkout is not None:
        return _publish_to_checkout(repo, state, chain, checkout)
    ref = f"refs/heads/{state.base_branch}"
    if not git_merge.update_ref(
        repo, ref, chain.head, chain.base, message=f"dag merge {state.run_id}"
    ):
        return None
    _drop_stale_parked(repo, state, chain)
    return attrs.evolve(report_of(state, chain), new_tip=chain.head)


def _publish_to_checkout(
    repo: Path, state: RunState, chain: Chain, checkout: Path
) -> MergeReport | None:
    """Fast-forward the checkout of the base branch when that is safe, else park.

    git's fast-forward is no compare-and-swap: it moves the branch (with HEAD, index and
    files) from any ancestor of the chain's head, so from a tip reset back it would bring
    back what the reset dropped. So once the move locks are held (after any wait for them)
    the checkout is asked again, in one ``git status``: still on the branch, the branch
    still at the chain's base, else the chain is built again (None); safe to update, else
    parked. git then moves the branch from the tip it reads as it starts (journaled): a move
    from another (a reset in between) is taken back (``checkout_orig``), and built again."""
    move = (
        str(checkout),
        state.base_branch,
        chain.base,
        chain.head,
        state.run_id,
        chain.replayed,
    )
    unsafe = partial(_unsafe_to_update, repo, checkout, chain, branch=state.base_branch)
    try:
        reason = checkout_move.fast_forward(repo, checkout_move.Move(*move), unsafe)
    except checkout_move.Moved:  # while it waited for the move lock, say
        return None
    except GitError as exc:
        if base_tip(repo, state) != chain.base:
            return None  # the user committed meanwhile, and git changed nothing
        if checkout_move.midway(exc):  # settled: the checkout is as it was
            return _park(repo, state, chain, *_cut_short(repo, state, checkout, chain, exc))
        why = f"fast-forwarding it failed: {_first_line(exc)}"
        return _park(repo, state, chain, why, until=_refused_until(checkout, exc))
    if reason is not None:
        return _park(repo, state, chain, reason)
    _drop_stale_parked(repo, state, chain)
    report = report_of(state, chain)
    return attrs.evolve(report, new_tip=chain.head, checkout=str(checkout))


def _cut_short(
    repo: Path, state: RunState, checkout: Path, chain: Chain, exc: GitError
) -> tuple[str, bool]:
    """Why the result waits when git was killed during the update (its signal) or failed
    midway (what it said: a full disk), and whether the checkout is clean again, so that
    ``dag merge`` does it again."""
    command = onto_advice.merge_command(state.run_id, onto=chain.replayed)
    if exc.returncode == -signal.SIGXFSZ:  # ulimit -f: as a full disk, no interrupt
        why = (
            f"git reached the file size limit (ulimit -f; SIGXFSZ) during the update of "
            f"{checkout}; it was undone"
        )
        again = f"once the limit is raised, `{command}` does it again"
    elif exc.returncode < 0:
        name = procgroup.signal_name(-exc.returncode)
        why = f"git was killed by {name} during the update of {checkout}; it was undone"
        again = f"`{command}` does it again"
    else:
        why = f"git failed during the update of {checkout} ({_first_line(exc)}); it was undone"
        again = f"once that is put right, `{command}` does it again"
    left = _unsafe_to_update(repo, checkout, chain)
    if left is None:
        return f"{why}; {again}", True
    return f"{why}, but {left}", False


def _refused_until(checkout: Path, exc: GitError) -> str:
    """What must happen before a fast-forward git refused can be done: no other git
    working in the checkout (its ``index.lock``: one at work, or one killed that left it),
    else what git said put right."""
    if lock := git_said.lock_in_the_way(exc.stderr or ""):
        return f"no git works in {checkout} (if none does, delete {lock}: a killed git left it)"
    return "what git said is put right"


def _lock_left(checkout: Path, branch: str) -> Path | None:
    """The first lock file there that stops a git from moving ``branch`` in ``checkout``:
    its ``index.lock``, its ``HEAD.lock``, or the branch's ``refs/heads/<branch>.lock``."""
    own = git_worktree.git_dir(checkout)
    common = git_worktree.common_dir(checkout) or own
    locks = (own / "index.lock", own / "HEAD.lock", common / "refs" / "heads" / f"{branch}.lock")
    return next((lock for lock in locks if lock.exists()), None)


def _first_line(exc: GitError) -> str:
    """What git said (``error: unable to write file big.bin``: ``git_said.gist``)."""
    return git_said.gist(exc.stderr or exc.stdout) or f"exit code {exc.returncode}"


def _park(
    repo: Path,
    state: RunState,
    chain: Chain,
    reason: str,
    again: bool = False,
    *,
    until: str = "the checkout is clean",
) -> MergeReport:
    """Leave the result on ``dag/<run>/_merged``, which must hold nothing else of value;
    ``until``: what must happen before ``dag merge`` can take it."""
    parked = merged_branch(state.run_id)
    previous = git_refs.rev_parse(repo, f"refs/heads/{parked}")
    if previous is not None and git_merge.changes_not_on(repo, previous, chain.head):
        raise DagspecError(
            f"{reason}, and the branch {parked}, where the merge result would wait, has "
            f"commits of its own: rename or delete it, then run "
            f"`{onto_advice.merge_command(state.run_id, onto=chain.replayed)}`"
        )
    git_merge.set_branch(repo, parked, chain.head)
    report = report_of(state, chain)
    return attrs.evolve(
        report, parked_on=parked, parked_because=reason, merge_again=again, parked_until=until
    )


def _checkout_of(repo: Path, branch: str) -> tuple[Path | None, checkout_safety.Busy | None]:
    """The worktree of this repository that has ``branch`` checked out, if it exists, and
    why it must not be updated when an operation of git's holds the branch with HEAD
    detached (``checkout_safety.operation_on``: a rebase would undo the merge as it ends)."""
    for path, checked_out in git_worktree.worktrees(repo).items():
        if not path.is_dir():
            continue
        if checked_out == branch:
            return path, None
        busy = None if checked_out else checkout_safety.operation_on(path, branch)
        if busy is not None:
            return path, busy
    return None, None


def _unsafe_to_update(
    repo: Path, checkout: Path, chain: Chain, *, branch: str | None = None
) -> str | None:
    return checkout_safety.unsafe_to_update(repo, checkout, chain.base, chain.head, branch=branch)


def waiting_result(repo: Path, state: RunState) -> str | None:
    """What ``dag status`` says of a result that waits on ``dag/<run>/_merged`` (completed
    specs not merged yet), and why, as the run's end said it: the checkout of the base
    branch that must not be updated, as it is now. None when no result waits there."""
    parked = merged_branch(state.run_id)
    head = git_refs.rev_parse(repo, f"refs/heads/{parked}")
    unmerged = any(s.status is SpecStatus.COMPLETED and not s.merged for s in state.specs)
    if head is None or not unmerged:
        return None
    said = f"not merged yet: the result waits on {parked}"
    base = git_refs.rev_parse(repo, f"refs/heads/{state.base_branch}")
    if base is not None and _taken(repo, head, base):
        onto = onto_advice.FLAG if onto_advice.rewritten_now(repo, state) else ""
        return (
            f"{state.base_branch} has taken the result that waited on {parked} (a merge of "
            f"yours, say), not recorded yet: `{dag_command()} merge {state.run_id}{onto}` "
            "records it"
        )
    checkout, busy = _checkout_of(repo, state.base_branch)
    why = None if busy is None else busy.why
    if why is None and checkout is not None and base is not None:
        why = checkout_safety.unsafe_to_update(repo, checkout, base, head)
    lock = None if why is not None or checkout is None else _lock_left(checkout, state.base_branch)
    if lock is not None:
        why = f"{lock} is there: a git works in {checkout}, or a killed one left it (delete it)"
    if why is None:
        return f"{said}; nothing keeps {state.base_branch} from taking it now"
    return f"{said}, as {state.base_branch} was not moved: {why}"


def _taken(repo: Path, head: str, base: str) -> bool:
    """Whether the base branch, at ``base``, has the parked result ``head``: fast-forwarded
    to it or past it (``git merge --ff-only``), or its changes squashed or rebased in."""
    return git_refs.is_ancestor(repo, head, base) or not git_merge.changes_not_on(repo, head, base)


def _drop_stale_parked(repo: Path, state: RunState, chain: Chain) -> None:
    """``dag/<run>/_merged`` is obsolete once the base branch has all its work, the chain's
    head: delete it when every commit it has beyond that is a merge commit (ours), or one
    whose change the head has (a spec's commit replayed onto a base branch that moved), or
    when the head has all their changes together (the user squash-merged it):
    ``changes_not_on``."""
    parked, tip = merged_branch(state.run_id), chain.head
    if chain.branches is not None:  # as read to build the chain
        head = chain.branches.get(f"refs/heads/{parked}")
    else:
        head = git_refs.rev_parse(repo, f"refs/heads/{parked}")
    if head is None or git_merge.changes_not_on(repo, head, tip):
        return
    with contextlib.suppress(GitError):  # checked out somewhere: the user's now
        git_refs.delete_branch(repo, parked, force=True)


def predict(repo: Path, state: RunState, chain: Chain) -> MergeReport:
    """The report of a dry run: the same merges, and where the result would go."""
    report = report_of(state, chain, dry_run=True)
    checkout, busy = _checkout_of(repo, state.base_branch)
    if chain.head == chain.base or (checkout is None and busy is None):
        return report
    reason, until = (None, None) if busy is None else busy
    if checkout is not None and reason is None:
        reason = _unsafe_to_update(repo, checkout, chain)
    if reason is None:
        return attrs.evolve(report, checkout=str(checkout))
    parked = attrs.evolve(report, parked_on=merged_branch(state.run_id), parked_because=reason)
    return parked if until is None else attrs.evolve(parked, parked_until=until)
