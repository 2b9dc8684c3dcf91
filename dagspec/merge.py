"""Merging a run's completed specs into the base branch, away from the user's checkout.

How a merge is made, and what it guarantees (README, Merging):

- **Built away from any checkout.** Each completed spec, in dependency order, becomes one
  ``--no-ff`` merge commit made of objects only (``merge-tree --write-tree`` then
  ``commit-tree``), chained from the base branch's tip. No index, working tree or ref is
  touched while merging, so nothing can be left half-merged (no ``MERGE_HEAD``, no
  conflict markers).
- **The integration branch's joins are reused.** Specs are chained in the order they
  joined ``dag/<run>/_integration`` (``dagspec.integration``), and a join commit whose
  first parent is the chain's head is taken as it is: when the base branch has not moved,
  the chain *is* the integration branch, and the base branch moves to its tip.
- **A rewritten base is never merged into** (``integration.refuse_rewritten``).
- **Nothing the repository cannot read is published.** Every object the chain would bring
  to the base branch is read once (``git_merge.check_readable``) before anything moves:
  git takes a tree pruned by ``git gc`` as empty and merges "successfully", deleting files.
- **Conflicts stay out.** A spec whose merge conflicts is left unmerged, with every spec that
  depends on it (they carry its code); the others still merge.
- **The base branch moves once**, to the last commit of the chain, by compare-and-swap from
  the tip the chain was built on. If someone moved the branch meanwhile, the chain is built
  again on the new tip (at most ``ATTEMPTS`` times), so no commit is ever lost.
- **The user's checkout is updated only when that is safe.** When the base branch is
  checked out, the checkout is fast-forwarded (HEAD, index and files together) only if it
  has no changes to tracked files and no untracked file the merge would overwrite.
  Otherwise nothing of the user's is touched: the result waits on ``dag/<run>/_merged``.
- **State says what is on the base branch.** A spec becomes ``merged`` (with its
  ``merge_commit``) only once its merge is on the base branch; while the result waits on
  ``dag/<run>/_merged`` it stays unmerged, and the next ``dag merge`` (or the user's
  fast-forward, which the next ``dag merge`` notices) finishes the job.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs

from dagspec import (
    checkout_move,
    checkout_safety,
    git_batch,
    git_commit,
    git_merge,
    git_refs,
    git_said,
    git_worktree,
    integration,
    lifecycle,
    lost_work,
    moved_on,
    procgroup,
    replay,
)
from dagspec.dagfile import Dag
from dagspec.errors import DagspecError, GitError
from dagspec.lifecycle import RunState, SpecState, SpecStatus
from dagspec.merge_report import LEFT_OFF, MergeReport, Outcome, SpecMerge
from dagspec.undeleted import Undeleted
from dagspec.workspace import branch_name, merged_branch

ATTEMPTS = 3
"""How many times the merges are built again when the base branch moves under them."""


@attrs.frozen
class _Chain:
    """Merges built on ``base`` as objects; ``head`` is the last commit (``base`` if none).
    ``branches``: the run's branches as read to build it (``integration.run_branches``),
    None when it was built another way."""

    base: str
    head: str
    specs: tuple[SpecMerge, ...]
    branches: Mapping[str, str] | None = None


def merge_run(
    repo: Path, state: RunState, dag: Dag, *, dry_run: bool = False, onto_current: bool = False
) -> tuple[RunState, MergeReport]:
    """Merge every completed, not yet merged spec into the base branch (module docstring).

    Returns the new state (unchanged for a dry run, which writes no ref, index or file) and
    a report. Raises ``DagspecError`` when the base branch is gone or keeps moving, and
    ``integration.RewrittenBase`` when it was rewritten, unless ``onto_current``: then the
    specs are replayed onto it (``dagspec.replay``).
    """
    for _ in range(ATTEMPTS):
        tip, seen = _base_tip(repo, state), state
        with _no_room(state.run_id):
            if onto_current and integration.rewritten(repo, state, tip):
                # a replayed merge a reset dropped since: replayed again (as _build does)
                seen = lifecycle.record_dropped(state, dropped_merges(repo, state, tip))
                chain = _replay(repo, seen, dag, tip)
            else:
                integration.refuse_rewritten(repo, state, tip)
                chain = _build(repo, state, dag, tip)
        if chain.head != chain.base:  # git builds merges of a tree it cannot read (pruned)
            git_merge.check_readable(repo, chain.head, chain.base)
        if dry_run:
            return state, _predict(repo, state, chain)
        report = _publish(repo, seen, chain)
        if report is not None:
            merged = _record(seen, report)
            if all(s.merged for s in merged.specs):  # the run is over: its joins are done with
                report = _drop_joins(repo, state.run_id, chain, report)
            return merged, report
    raise DagspecError(
        f"the branch {state.base_branch} kept moving while merging run {state.run_id} "
        f"({ATTEMPTS} tries); nothing was changed: run `dag merge {state.run_id}` again"
    )


@contextlib.contextmanager
def _no_room(run_id: str) -> Iterator[None]:
    """A git that could not write the merges' objects for want of room (a full disk, the
    file size limit: ``git_said.no_room``) said in one line: nothing has moved yet."""
    try:
        yield
    except GitError as exc:
        room = git_said.no_room(exc.returncode, exc.stderr or "")
        if room is None:
            raise
        raise DagspecError(
            f"git could not write the merges of run {run_id}: {room}; nothing was changed "
            f"(no branch moved, no file touched): `dag merge {run_id}` once there is room"
        ) from None


def _drop_joins(repo: Path, run_id: str, chain: _Chain, report: MergeReport) -> MergeReport:
    """``integration.drop``, cleanup once the base branch has moved: what git would not
    delete (a stale lock file) is said by the report, and the merge recorded all the same."""
    try:
        integration.drop(repo, run_id, listed=chain.branches)
    except GitError as exc:
        kept = Undeleted((integration.integration_branch(run_id),), exc.stderr or exc.stdout)
        return attrs.evolve(report, undeleted=kept)
    return report


def _base_tip(repo: Path, state: RunState) -> str:
    tip = git_refs.rev_parse(repo, f"refs/heads/{state.base_branch}")
    if tip is None:
        raise DagspecError(
            f"the base branch {state.base_branch} of run {state.run_id} no longer exists: "
            f"create it again (it started at {state.base_commit[:12]}), then merge"
        )
    return tip


# --- building the merges --------------------------------------------------------------------


def _build(repo: Path, state: RunState, dag: Dag, tip: str) -> _Chain:
    """Chain one merge commit per mergeable spec on ``tip``, in dependency order.

    A spec is left off when its merge conflicts, its branch is missing, or it is behind a
    spec left off or not completed (the lifecycle's cascade rule, ``blocked_by``).
    """
    head = tip
    results: list[SpecMerge] = []
    known = {s.id for s in state.specs}
    deps = {s.id: [d for d in s.depends_on if d in known] for s in state.specs}
    roots = [s.id for s in state.specs if s.status is not SpecStatus.COMPLETED and not s.merged]
    facts = integration.MergeFacts.read(repo, state)
    facts.replayed = replay.merged_replays(repo, tip, state.base_commit)  # the base has them
    facts.dropped = _dropped(repo, state, tip)
    facts.moved = moved_on.moved_since_merged(repo, state, tip, facts.tips)  # merged again
    for spec_id in integration.merge_order(deps, facts.joins, facts.tips):
        spec = state.spec(spec_id)
        if spec_id in roots:
            continue
        behind = lifecycle.blocked_by(deps, roots).get(spec_id, ())
        result, head = _merge_one(repo, state, dag, spec, (tip, head), behind, facts)
        if result.outcome in LEFT_OFF and not result.blocked_by:
            roots.append(spec_id)
        results.append(result)
    return _Chain(tip, head, tuple(results), facts.branches)


def _dropped(repo: Path, state: RunState, tip: str) -> frozenset[str]:
    """The specs recorded merged by a merge commit the base branch, at ``tip``, no longer has
    (a reset, a rebase aborted after the merge), and whose work it lacks too: one
    ``git rev-list``, when there are any. A merge commit rewritten with the spec's work
    kept (``git commit --amend`` of it, a ``git pull --rebase`` that flattens merges) is
    not a drop: its spec side is on the base, or every change of it is
    (``git_merge.adds_nothing``)."""
    recorded = {s.id: s.merge_commit for s in state.specs if s.merged and s.merge_commit}
    if not recorded:
        return frozenset()
    on_base = git_merge.commits_since(repo, tip, state.base_commit)
    return frozenset(
        spec_id
        for spec_id, sha in recorded.items()
        if sha not in on_base and not _work_on_base(repo, sha, tip)
    )


def dropped_merges(repo: Path, state: RunState, tip: str | None = None) -> frozenset[str]:
    """The specs recorded merged whose merge the base branch, at ``tip`` (default: as it is
    now), no longer has (``_dropped``), for ``dag status`` and a replay; none when there is
    no base branch to ask, or git cannot answer (its base commit pruned: a rewritten base,
    which ``dag merge`` names)."""
    tip = tip or git_refs.rev_parse(repo, f"refs/heads/{state.base_branch}")
    if tip is None:
        return frozenset()
    try:
        return _dropped(repo, state, tip)
    except GitError:
        return frozenset()


def _work_on_base(repo: Path, merge_commit: str, tip: str) -> bool:
    """Whether the base, at ``tip``, has the spec side (``^2``) of ``merge_commit``, as a
    commit or by content; False when that commit is gone (garbage-collected)."""
    work = git_refs.rev_parse(repo, f"{merge_commit}^2")
    if work is None:
        return False
    return git_refs.is_ancestor(repo, work, tip) or git_merge.adds_nothing(repo, tip, work)


def _replay(repo: Path, state: RunState, dag: Dag, tip: str) -> _Chain:
    known = {s.id for s in state.specs}
    deps = {s.id: [d for d in s.depends_on if d in known] for s in state.specs}
    joined = integration.joins(repo, state.run_id, state.base_commit)
    order = integration.merge_order(deps, joined, integration.spec_tips(repo, state))
    head, specs = replay.build(repo, state, dag, tip, order)
    return _Chain(tip, head, specs)


def _merge_one(
    repo: Path,
    state: RunState,
    dag: Dag,
    spec: SpecState,
    base_and_head: tuple[str, str],
    behind: tuple[str, ...],
    known: integration.MergeFacts,
) -> tuple[SpecMerge, str]:
    """Merge one spec onto the chain's ``head`` as objects; return the result and the new
    head. A branch the chain already contains (a spec that added nothing of its own) is
    "already merged" when the base had it, else merged by the commit that brought it. A
    branch whose merge would change nothing is "already merged" only when every path it
    changed is the same on the base (``git_merge.adds_nothing``: the user squash-merged it,
    or ``dag/<run>/_merged``); a merge driver of the user's (``merge=ours``) can make a merge
    change nothing, and then the spec is merged all the same, its work kept in the history.
    ``behind`` names the specs left off that this one depends on. A join on top of ``head``
    is the merge (``known.joins``): it was made only because ``head`` lacked the tip."""
    base, head = base_and_head
    branch = spec.branch or branch_name(state.run_id, spec.id)
    if spec.id in known.dropped:
        lost = known.tips.get(spec.id) is None and not git_batch.present(
            repo, filter(None, [spec.merge_commit])
        )
        outcome = Outcome.LOST if lost else Outcome.DROPPED  # LOST: no way to merge it again
        return SpecMerge(spec.id, branch, outcome, spec.merge_commit), head
    if spec.merged and spec.id not in known.moved:
        return SpecMerge(spec.id, branch, Outcome.ALREADY_MERGED, spec.merge_commit), head
    if behind:
        return SpecMerge(spec.id, branch, Outcome.BLOCKED, blocked_by=behind), head
    tip = known.tips.get(spec.id)
    if tip is None and spec.dropped_merge is not None:  # that merge gone too (git gc)
        return SpecMerge(spec.id, branch, Outcome.LOST, spec.dropped_merge), head
    if tip is None:
        return SpecMerge(spec.id, branch, Outcome.MISSING), head
    if tip in known.replayed:  # a driver killed before recording it merged it (replayed)
        return SpecMerge(spec.id, branch, Outcome.ALREADY_MERGED, known.replayed[tip]), head
    if (head, tip) in known.joins:
        join = known.joins[head, tip]
        return SpecMerge(spec.id, branch, Outcome.WOULD_MERGE, join), join
    if git_refs.is_ancestor(repo, tip, head):
        commit = _merge_commit_of(repo, tip, head, state.base_commit)
        had = (
            Outcome.ALREADY_MERGED if git_refs.is_ancestor(repo, tip, base) else Outcome.WOULD_MERGE
        )
        return SpecMerge(spec.id, branch, had, commit), head
    try:
        work = replay.own_work(repo, known, tip, head)  # the base moved: its commits replayed
        merged = git_merge.merge_tree(repo, head, work)
    except GitError:  # its branch points at a commit ``git gc`` pruned? (asked only now)
        if git_batch.present(repo, [tip]):
            raise
        return SpecMerge(spec.id, branch, Outcome.MISSING, tip), head  # with the lost commit
    if merged.conflicts:
        return SpecMerge(spec.id, branch, Outcome.WOULD_CONFLICT, files=merged.conflicts), head
    if merged.tree == known.tree(head) and git_merge.adds_nothing(repo, base, tip):
        return SpecMerge(spec.id, branch, Outcome.ALREADY_MERGED), head  # squash-merged, say
    message = merge_message(state.run_id, spec.id, branch, _description(dag, spec.id))
    commit = git_commit.commit_tree(repo, merged.tree, (head, work), message, sign=known.sign())
    known.trees[commit] = merged.tree
    return SpecMerge(spec.id, branch, Outcome.WOULD_MERGE, commit), commit


def _merge_commit_of(repo: Path, commit: str, head: str, since: str) -> str | None:
    """The commit that merged ``commit`` into ``head`` since the run began, if one did."""
    if git_refs.rev_parse(repo, since) is None:  # the run's base commit is gone (history rewritten)
        return None
    return git_merge.merge_commit_of(repo, commit, head, since)


def _description(dag: Dag, spec_id: str) -> str | None:
    feature = dag.features.get(spec_id)
    return None if feature is None else feature.description


def merge_message(run_id: str, spec_id: str, branch: str, description: str | None) -> str:
    """``Merge dag/<run>/<spec>: <spec>``, the description, and the run, as paragraphs."""
    paragraphs = [
        f"Merge {branch}: {spec_id}",
        (description or "").strip(),
        f"dagspec run {run_id}",
    ]
    return "\n\n".join(p for p in paragraphs if p) + "\n"


# --- publishing the result ------------------------------------------------------------------


def _publish(repo: Path, state: RunState, chain: _Chain) -> MergeReport | None:
    """Move the base branch (and its checkout) to the chain's head, or park the head on
    ``dag/<run>/_merged``. None when the base branch moved meanwhile: build again."""
    if chain.head == chain.base:
        _drop_stale_parked(repo, state, chain)
        return _report(state, chain)
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
    return attrs.evolve(_report(state, chain), new_tip=chain.head)


def _publish_to_checkout(
    repo: Path, state: RunState, chain: _Chain, checkout: Path
) -> MergeReport | None:
    """Fast-forward the checkout of the base branch when that is safe, else park.

    The fast-forward is the checkout's compare-and-swap: git moves the branch (with HEAD,
    index and files) only when its tip is still an ancestor of the chain's head (journaled)."""
    reason = _unsafe_to_update(repo, checkout, chain)
    if reason is None:
        move = (str(checkout), state.base_branch, chain.base, chain.head, state.run_id)
        try:
            checkout_move.fast_forward(repo, checkout_move.Move(*move))
        except GitError as exc:
            if _base_tip(repo, state) != chain.base:
                return None  # the user committed meanwhile, and git changed nothing
            if checkout_move.midway(exc):  # settled: the checkout is as it was
                return _park(repo, state, chain, *_cut_short(repo, state, checkout, chain, exc))
            why = f"fast-forwarding it failed: {_first_line(exc)}"
            return _park(repo, state, chain, why, until=_refused_until(checkout, exc))
    if reason is not None:
        return _park(repo, state, chain, reason)
    _drop_stale_parked(repo, state, chain)
    report = _report(state, chain)
    return attrs.evolve(report, new_tip=chain.head, checkout=str(checkout))


def _cut_short(
    repo: Path, state: RunState, checkout: Path, chain: _Chain, exc: GitError
) -> tuple[str, bool]:
    """Why the result waits when git was killed during the update (its signal) or failed
    midway (what it said: a full disk), and whether the checkout is clean again, so that
    ``dag merge`` does it again."""
    if exc.returncode == -signal.SIGXFSZ:  # ulimit -f: as a full disk, no interrupt
        why = (
            f"git reached the file size limit (ulimit -f; SIGXFSZ) during the update of "
            f"{checkout}; it was undone"
        )
        again = f"once the limit is raised, `dag merge {state.run_id}` does it again"
    elif exc.returncode < 0:
        name = procgroup.signal_name(-exc.returncode)
        why = f"git was killed by {name} during the update of {checkout}; it was undone"
        again = f"`dag merge {state.run_id}` does it again"
    else:
        why = f"git failed during the update of {checkout} ({_first_line(exc)}); it was undone"
        again = f"once that is put right, `dag merge {state.run_id}` does it again"
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
    chain: _Chain,
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
            f"commits of its own: rename or delete it, then run `dag merge {state.run_id}`"
        )
    git_merge.set_branch(repo, parked, chain.head)
    report = _report(state, chain)
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


def _unsafe_to_update(repo: Path, checkout: Path, chain: _Chain) -> str | None:
    return checkout_safety.unsafe_to_update(repo, checkout, chain.base, chain.head)


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


def _drop_stale_parked(repo: Path, state: RunState, chain: _Chain) -> None:
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


# --- dry run, report, state -----------------------------------------------------------------


def _predict(repo: Path, state: RunState, chain: _Chain) -> MergeReport:
    """The report of a dry run: the same merges, and where the result would go."""
    report = _report(state, chain, dry_run=True)
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


_FACTS = {Outcome.WOULD_MERGE: Outcome.MERGED, Outcome.WOULD_CONFLICT: Outcome.CONFLICT}


def _report(state: RunState, chain: _Chain, *, dry_run: bool = False) -> MergeReport:
    """The chain as a report (its predictions made facts unless ``dry_run``), with the base
    branch not moved; callers that moved it set ``new_tip``."""
    specs = chain.specs
    if not dry_run:
        specs = tuple(attrs.evolve(s, outcome=_FACTS.get(s.outcome, s.outcome)) for s in specs)
    unfinished = tuple(
        (s.id, s.status.value)
        for s in state.specs
        if s.status is not SpecStatus.COMPLETED and not s.merged
    )
    return MergeReport(
        state.run_id,
        state.base_branch,
        dry_run,
        specs,
        chain.base,
        chain.base,
        unfinished,
        order=tuple(s.id for s in state.specs),
    )


def _record(state: RunState, report: MergeReport) -> RunState:
    """Mark the specs whose merge is on the base branch as merged (not those parked)."""
    on_base = (
        {Outcome.ALREADY_MERGED} if report.parked_on else {Outcome.ALREADY_MERGED, Outcome.MERGED}
    )
    merges = {r.spec_id: r.commit for r in report.specs if r.outcome in on_base}
    dropped = [r.spec_id for r in report.specs if r.outcome is Outcome.DROPPED]
    state = lost_work.record(
        state, {r.spec_id: r.commit for r in report.specs if r.outcome is Outcome.LOST}
    )
    for spec_id, commit in merges.items():  # merged again: its branch had moved on
        if state.spec(spec_id).merged and commit is not None:
            state = state.with_spec(attrs.evolve(state.spec(spec_id), merge_commit=commit))
    return lifecycle.record_merges(lifecycle.record_dropped(state, dropped), merges)
