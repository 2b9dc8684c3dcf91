"""Merging a run's completed specs into the base branch, away from the user's checkout.

How a merge is made, and what it guarantees (DESIGN §5):

- **Built away from any checkout.** Each completed spec, in dependency order, becomes one
  ``--no-ff`` merge commit made of objects only (``merge-tree --write-tree`` then
  ``commit-tree``), chained from the base branch's tip. No index, working tree or ref is
  touched while merging, so nothing can be left half-merged (no ``MERGE_HEAD``, no
  conflict markers).
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
import enum
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import attrs

from dagspec import git, graph
from dagspec.errors import EXIT_FAILED, EXIT_OK, DagspecError, GitError
from dagspec.spec import Dag
from dagspec.state import RunState, SpecState, SpecStatus
from dagspec.workspace import branch_name, merged_branch
from dagspec.worktree import remove_worktree

ATTEMPTS = 3
"""How many times the merges are built again when the base branch moves under them."""

RUN_CONFIG = (".autospec/", ".claude/")
"""Untracked configuration a run copies into each worktree; removing it loses nothing."""


class Outcome(enum.Enum):
    """What merging did to one completed spec; ``WOULD_*`` are a dry run's predictions."""

    MERGED = "merged"
    ALREADY_MERGED = "already merged"
    CONFLICT = "conflict"
    BLOCKED = "blocked"
    MISSING = "branch missing"
    WOULD_MERGE = "would merge"
    WOULD_CONFLICT = "would conflict"


LEFT_OFF = frozenset({Outcome.CONFLICT, Outcome.BLOCKED, Outcome.MISSING, Outcome.WOULD_CONFLICT})
"""Outcomes that leave a completed spec off the base branch."""


@attrs.frozen
class SpecMerge:
    """What happened (or, in a dry run, would happen) to one completed spec."""

    spec_id: str
    branch: str
    outcome: Outcome
    commit: str | None = None  # its merge commit, when known
    files: tuple[str, ...] = ()  # the conflicting files
    blocked_by: tuple[str, ...] = ()  # the specs left off that it depends on


@attrs.frozen
class MergeReport:
    """The result of ``merge_run``, for ``render_report`` and ``merge_exit_code``.

    ``old_tip``/``new_tip`` are the base branch's tip before and after (equal when it did
    not move). ``parked_on`` names ``dag/<run>/_merged`` when the result waits there, and
    ``parked_because`` says why. ``checkout`` is the checkout of the base branch that was
    fast-forwarded, if any.
    """

    run_id: str
    base_branch: str
    dry_run: bool
    specs: tuple[SpecMerge, ...]
    old_tip: str
    new_tip: str
    not_completed: tuple[tuple[str, str], ...] = ()  # (spec id, status) of unfinished specs
    checkout: str | None = None
    parked_on: str | None = None
    parked_because: str | None = None

    @property
    def base_moved(self) -> bool:
        return self.new_tip != self.old_tip


@attrs.frozen
class _Chain:
    """Merges built on ``base`` as objects; ``head`` is the last commit (``base`` if none)."""

    base: str
    head: str
    specs: tuple[SpecMerge, ...]


def merge_run(
    repo: Path, state: RunState, dag: Dag, *, dry_run: bool = False
) -> tuple[RunState, MergeReport]:
    """Merge every completed, not yet merged spec into the base branch (module docstring).

    Returns the new state (unchanged for a dry run, which writes no ref, index or file) and
    a report. Raises ``DagspecError`` when the base branch is gone or keeps moving.
    """
    for _ in range(ATTEMPTS):
        tip = _base_tip(repo, state)
        chain = _build(repo, state, dag, tip)
        if dry_run:
            return state, _predict(repo, state, chain)
        report = _publish(repo, state, chain)
        if report is not None:
            return _record(state, report), report
    raise DagspecError(
        f"the branch {state.base_branch} kept moving while merging run {state.run_id} "
        f"({ATTEMPTS} tries); nothing was changed: run `dag merge {state.run_id}` again"
    )


def _base_tip(repo: Path, state: RunState) -> str:
    tip = git.rev_parse(repo, f"refs/heads/{state.base_branch}")
    if tip is None:
        raise DagspecError(
            f"the base branch {state.base_branch} of run {state.run_id} no longer exists: "
            f"create it again (it started at {state.base_commit[:12]}), then merge"
        )
    return tip


# --- building the merges --------------------------------------------------------------------


def _build(repo: Path, state: RunState, dag: Dag, tip: str) -> _Chain:
    """Chain one merge commit per mergeable spec on ``tip``, in dependency order.

    A spec is left off when its merge conflicts, its branch is missing, or it depends on a
    spec left off or not completed; ``left_off`` maps each to the root causes it names.
    """
    head = tip
    results: list[SpecMerge] = []
    left_off: dict[str, tuple[str, ...]] = {
        s.id: (s.id,) for s in state.specs if s.status is not SpecStatus.COMPLETED and not s.merged
    }
    for spec in _in_dependency_order(state):
        if spec.status is not SpecStatus.COMPLETED and not spec.merged:
            continue
        result, head = _merge_one(repo, state, dag, spec, (tip, head), left_off)
        if result.outcome in LEFT_OFF:
            left_off[spec.id] = result.blocked_by or (spec.id,)
        results.append(result)
    return _Chain(tip, head, tuple(results))


def _in_dependency_order(state: RunState) -> list[SpecState]:
    known = {s.id for s in state.specs}
    deps = {s.id: [d for d in s.depends_on if d in known] for s in state.specs}
    return [state.spec(spec_id) for spec_id in graph.topological_order(deps)]


def _merge_one(
    repo: Path,
    state: RunState,
    dag: Dag,
    spec: SpecState,
    base_and_head: tuple[str, str],
    left_off: dict[str, tuple[str, ...]],
) -> tuple[SpecMerge, str]:
    """Merge one spec onto the chain's ``head`` as objects; return the result and the new
    head. A branch the chain already contains (a spec that added nothing of its own) is
    "already merged" when the base had it, else merged by the commit that brought it."""
    base, head = base_and_head
    branch = spec.branch or branch_name(state.run_id, spec.id)
    if spec.merged:
        return SpecMerge(spec.id, branch, Outcome.ALREADY_MERGED, spec.merge_commit), head
    roots = tuple(dict.fromkeys(r for d in spec.depends_on for r in left_off.get(d, ())))
    if roots:
        return SpecMerge(spec.id, branch, Outcome.BLOCKED, blocked_by=roots), head
    tip = git.rev_parse(repo, f"refs/heads/{branch}")
    if tip is None:
        return SpecMerge(spec.id, branch, Outcome.MISSING), head
    if git.is_ancestor(repo, tip, head):
        commit = _merge_commit_of(repo, tip, head, state.base_commit)
        known = Outcome.ALREADY_MERGED if git.is_ancestor(repo, tip, base) else Outcome.WOULD_MERGE
        return SpecMerge(spec.id, branch, known, commit), head
    merged = git.merge_tree(repo, head, tip)
    if merged.conflicts:
        return SpecMerge(spec.id, branch, Outcome.WOULD_CONFLICT, files=merged.conflicts), head
    message = merge_message(state.run_id, spec.id, branch, _description(dag, spec.id))
    commit = git.commit_tree(repo, merged.tree, (head, tip), message, sign=git.signs_commits(repo))
    return SpecMerge(spec.id, branch, Outcome.WOULD_MERGE, commit), commit


def _merge_commit_of(repo: Path, commit: str, head: str, since: str) -> str | None:
    """The commit that merged ``commit`` into ``head`` since the run began, if one did."""
    if git.rev_parse(repo, since) is None:  # the run's base commit is gone (history rewritten)
        return None
    return git.merge_commit_of(repo, commit, head, since)


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
        _drop_stale_parked(repo, state.run_id, chain.base)
        return _report(state, chain)
    checkout = _checkout_of(repo, state.base_branch)
    if checkout is not None:
        return _publish_to_checkout(repo, state, chain, checkout)
    ref = f"refs/heads/{state.base_branch}"
    if not git.update_ref(repo, ref, chain.head, chain.base, message=f"dag merge {state.run_id}"):
        return None
    _drop_stale_parked(repo, state.run_id, chain.head)
    return attrs.evolve(_report(state, chain), new_tip=chain.head)


def _publish_to_checkout(
    repo: Path, state: RunState, chain: _Chain, checkout: Path
) -> MergeReport | None:
    """Fast-forward the checkout of the base branch when that is safe, else park.

    The fast-forward is the checkout's compare-and-swap: git moves the branch (with HEAD,
    index and files) only when its tip is still an ancestor of the chain's head.
    """
    reason = _unsafe_to_update(checkout, chain)
    if reason is None:
        try:
            git.fast_forward(checkout, chain.head)
        except GitError as exc:
            if _base_tip(repo, state) != chain.base:
                return None  # the user committed meanwhile, and git changed nothing
            reason = f"fast-forwarding it failed: {(exc.stderr or str(exc)).strip()}"
    if reason is not None:
        return _park(repo, state, chain, reason)
    _drop_stale_parked(repo, state.run_id, chain.head)
    report = _report(state, chain)
    return attrs.evolve(report, new_tip=chain.head, checkout=str(checkout))


def _park(repo: Path, state: RunState, chain: _Chain, reason: str) -> MergeReport:
    """Leave the result on ``dag/<run>/_merged``, which must hold nothing else of value."""
    parked = merged_branch(state.run_id)
    previous = git.rev_parse(repo, f"refs/heads/{parked}")
    if previous is not None and git.non_merge_commits(repo, previous, chain.head):
        raise DagspecError(
            f"{reason}, and the branch {parked}, where the merge result would wait, has "
            f"commits of its own: rename or delete it, then run `dag merge {state.run_id}`"
        )
    git.set_branch(repo, parked, chain.head)
    return attrs.evolve(_report(state, chain), parked_on=parked, parked_because=reason)


def _checkout_of(repo: Path, branch: str) -> Path | None:
    """The worktree of this repository that has ``branch`` checked out, if it exists."""
    for path, checked_out in git.worktrees(repo).items():
        if checked_out == branch and path.is_dir():
            return path
    return None


def _unsafe_to_update(checkout: Path, chain: _Chain) -> str | None:
    """Why fast-forwarding ``checkout`` from the chain's base to its head could lose the
    user's work, or None when it cannot. Asking writes nothing, not even the index."""
    changes = git.tracked_changes(checkout)
    if changes:
        return f"{checkout} has uncommitted changes ({_names(e[3:] for e in changes)})"
    in_the_way = _untracked_in_the_way(checkout, chain)
    if in_the_way:
        return f"{checkout} has untracked files the merge would overwrite ({_names(in_the_way)})"
    return None


def _untracked_in_the_way(checkout: Path, chain: _Chain) -> list[str]:
    """Paths the merge adds that exist untracked in ``checkout``, or whose parent exists
    there as an untracked file. Ignored files count: git would overwrite them silently."""
    changes = git.tree_changes(checkout, chain.base, chain.head)
    removed = {path for status, path in changes if status == "D"}
    hits: set[str] = set()
    for path in (path for status, path in changes if status == "A"):
        if _exists(checkout / path):
            hits.add(path)
        for parent in map(str, PurePosixPath(path).parents):
            if parent != "." and parent not in removed and _not_a_dir(checkout / parent):
                hits.add(parent)
    return sorted(hits)


def _exists(path: Path) -> bool:
    return path.is_symlink() or path.exists()


def _not_a_dir(path: Path) -> bool:
    """Something is there, and git could not put files under it."""
    return path.is_symlink() or (path.exists() and not path.is_dir())


def _names(paths: Iterable[str], limit: int = 5) -> str:
    items = list(paths)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _drop_stale_parked(repo: Path, run_id: str, tip: str) -> None:
    """``dag/<run>/_merged`` is obsolete once the base branch has all its work: delete it
    when every commit it has beyond ``tip`` is a merge commit (ours)."""
    parked = merged_branch(run_id)
    head = git.rev_parse(repo, f"refs/heads/{parked}")
    if head is None or git.non_merge_commits(repo, head, tip):
        return
    with contextlib.suppress(GitError):  # checked out somewhere: the user's now
        git.delete_branch(repo, parked, force=True)


# --- dry run, report, state -----------------------------------------------------------------


def _predict(repo: Path, state: RunState, chain: _Chain) -> MergeReport:
    """The report of a dry run: the same merges, and where the result would go."""
    report = _report(state, chain, dry_run=True)
    checkout = _checkout_of(repo, state.base_branch)
    if chain.head == chain.base or checkout is None:
        return report
    reason = _unsafe_to_update(checkout, chain)
    if reason is None:
        return attrs.evolve(report, checkout=str(checkout))
    return attrs.evolve(report, parked_on=merged_branch(state.run_id), parked_because=reason)


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
        state.run_id, state.base_branch, dry_run, specs, chain.base, chain.base, unfinished
    )


def _record(state: RunState, report: MergeReport) -> RunState:
    """Mark the specs whose merge is on the base branch as merged (not those parked)."""
    on_base = (
        {Outcome.ALREADY_MERGED} if report.parked_on else {Outcome.ALREADY_MERGED, Outcome.MERGED}
    )
    for result in report.specs:
        spec = state.spec(result.spec_id)
        if result.outcome in on_base and not spec.merged:
            state = state.with_spec(attrs.evolve(spec, merged=True, merge_commit=result.commit))
    return state


# --- removing merged specs' worktrees ------------------------------------------------------


def remove_merged_worktrees(repo: Path, state: RunState) -> RunState:
    """Remove the worktree and branch of each merged spec, setting its ``worktree`` to None.

    Only a worktree git lists for this repository, on the spec's own branch, is removed,
    and only when that loses nothing: no changes to tracked files, and no untracked files
    but the configuration the run copied in (``RUN_CONFIG``). Any other stays, and stays in
    the state (``render_cleanup`` names it). A branch is deleted only once the base branch
    contains it. Failed and blocked specs are not merged, so they keep theirs.
    """
    listed = {path.resolve(): branch for path, branch in git.worktrees(repo).items()}
    base = git.rev_parse(repo, f"refs/heads/{state.base_branch}")
    for spec in state.specs:
        branch = spec.branch or branch_name(state.run_id, spec.id)
        if spec.merged and _remove_worktree(repo, spec.worktree, branch, listed):
            _delete_merged_branch(repo, branch, base)
            state = state.with_spec(attrs.evolve(spec, worktree=None))
    return state


def _remove_worktree(
    repo: Path, worktree: str | None, branch: str, listed: dict[Path, str | None]
) -> bool:
    """Remove one spec's worktree if that is safe; True when it is gone."""
    if worktree is None or Path(worktree).resolve() not in listed:
        return True
    path = Path(worktree)
    if listed[path.resolve()] != branch:
        return False  # checked out on another branch since: not the run's any more
    dirt = git.uncommitted(path) if path.is_dir() else []
    untracked = [entry[3:] for entry in dirt if entry.startswith("??")]
    if len(untracked) < len(dirt) or not all(p.startswith(RUN_CONFIG) for p in untracked):
        return False
    try:
        remove_worktree(repo, path, force=bool(untracked))
    except GitError:
        return False  # locked, or changed meanwhile: keep it
    return True


def _delete_merged_branch(repo: Path, branch: str, base: str | None) -> None:
    tip = git.rev_parse(repo, f"refs/heads/{branch}")
    if tip is None or base is None or not git.is_ancestor(repo, tip, base):
        return
    with contextlib.suppress(GitError):  # checked out somewhere else: leave it
        git.delete_branch(repo, branch, force=True)


# --- rendering ----------------------------------------------------------------------------


def merge_exit_code(report: MergeReport) -> int:
    """1 when a completed spec is (or, in a dry run, would be) left off the base branch: a
    conflict, a spec depending on one, a missing branch, or the result left on
    ``dag/<run>/_merged``; else 0."""
    left_off = report.parked_on is not None or any(s.outcome in LEFT_OFF for s in report.specs)
    return EXIT_FAILED if left_off else EXIT_OK


def render_report(report: MergeReport) -> str:
    """The report as text for a terminal (ending in a newline): one line per spec, then what
    happened to the base branch, and how to finish by hand where something is left."""
    dry = " (dry run: nothing is written)" if report.dry_run else ""
    lines = [f"Run {report.run_id}, merging into {report.base_branch}{dry}:"]
    width = max((len(s.spec_id) for s in report.specs), default=0)
    lines += [
        f"  {_outcome_label(s, report):<15} {s.spec_id:<{width}}  {_detail(s)}".rstrip()
        for s in report.specs
    ]
    lines += [
        f"  {'not completed':<15} {spec_id:<{width}}  ({status})"
        for spec_id, status in report.not_completed
    ]
    lines += _parked(report) if report.parked_on else [_landing(report)]
    lines += _conflict_hints(report)
    return "\n".join(lines) + "\n"


def _outcome_label(result: SpecMerge, report: MergeReport) -> str:
    if result.outcome is Outcome.MERGED and report.parked_on is not None:
        return "merged (waits)"
    return result.outcome.value


def _detail(result: SpecMerge) -> str:
    if result.files:
        return "in " + _names(result.files)
    if result.blocked_by:
        return "depends on " + ", ".join(result.blocked_by) + ", left off"
    if result.outcome is Outcome.MISSING:
        return f"no branch {result.branch}"
    if result.outcome is Outcome.WOULD_MERGE or result.commit is None:
        return ""  # a dry run's commits are on no branch: do not show them
    return result.commit[:12]


def _parked(report: MergeReport) -> list[str]:
    """Why the result waits on ``dag/<run>/_merged``, and how to take it."""
    if report.dry_run:
        verb, touched, wait = "would not move", "would be", "would wait"
    else:
        verb, touched, wait = "was not moved", "was", "waits"
    return [
        f"{report.base_branch} {verb}: {report.parked_because}; nothing of yours {touched} "
        "touched.",
        f"The merged result {wait} on {report.parked_on}. To take it, once the checkout is clean:",
        f"    git merge --ff-only {report.parked_on}",
    ]


def _landing(report: MergeReport) -> str:
    """Where the result went (or would go)."""
    base, checkout = report.base_branch, report.checkout
    if report.dry_run:
        if not any(s.outcome is Outcome.WOULD_MERGE for s in report.specs):
            return f"{base} would not move."
        return f"{base} would move" + (f", and {checkout} be fast-forwarded." if checkout else ".")
    if report.base_moved:
        also = f"; {checkout} fast-forwarded" if checkout else ""
        return f"{base}: {report.old_tip[:12]} -> {report.new_tip[:12]}{also}."
    if any(s.outcome in LEFT_OFF for s in report.specs):
        return f"{base} did not move."
    return f"{base} did not move: nothing new to merge."


def _conflict_hints(report: MergeReport) -> list[str]:
    conflicts = [s for s in report.specs if s.files]
    if not conflicts:
        return []
    return [
        f"To merge {s.spec_id} by hand: in a clean checkout of {report.base_branch}, "
        f"`git merge {s.branch}`, resolve, commit; then `dag merge {report.run_id}` "
        "records it and merges what depends on it."
        for s in conflicts
    ]


def render_cleanup(before: RunState, after: RunState) -> str:
    """Which merged specs' worktrees ``remove_merged_worktrees`` removed, and which it kept;
    one line each, each ending in a newline (empty when there were none)."""
    lines: list[str] = []
    for old, new in zip(before.specs, after.specs, strict=True):
        if not old.merged or old.worktree is None:
            continue
        if new.worktree is None:
            lines.append(f"removed worktree {old.worktree} ({old.id})")
        else:
            lines.append(
                f"kept worktree {old.worktree} ({old.id}): it has changes of its own or is in "
                f"use; look, then `git worktree remove --force {old.worktree}`"
            )
    return "".join(line + "\n" for line in lines)
