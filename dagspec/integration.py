"""The run's integration branch: every completed spec joined, in the order they completed.

``dag/<run>/_integration`` (a name no spec id can take: ids start with a letter or digit)
starts at the run's base commit. When a spec's agent has exited 0 and its work is committed
on its branch, the spec *joins*: one ``--no-ff`` merge commit of its branch, made of objects
only (``merge-tree --write-tree`` then ``commit-tree``) and published by compare-and-swap of
the branch. A spec starts only once its dependencies completed, so the join order is a
dependency order, and the branch's first-parent history is one merge commit per spec.

What it is for (README, How a run works, steps 3 and 6):

- **Dependents start from it.** A spec with dependencies gets its worktree at the
  integration branch's tip, which holds the merged work of everything it depends on. No
  commit is made only to combine dependencies, so none can reach the base branch.
- **Conflicts show at once.** A spec whose work conflicts with the work joined before it
  fails as it completes (``JoinConflict``, naming the files), so its dependents are blocked
  then, not at the end. Its work stays committed on its branch.
- **The final merge reuses it.** ``dagspec.merge`` chains one merge per spec onto the base
  branch in join order and takes each join commit as it is when it fits (same first parent,
  same spec tip), so when the base branch has not moved the merge is a compare-and-swap of
  the base branch to this branch's tip.

``refuse_rewritten`` guards the final merge: a base branch that no longer has the run's
base commit (the user rewrote it during the run) is never merged into (README, Merging).

Joining is idempotent: a spec whose branch tip the integration branch already has is not
joined again (a driver killed after the join but before saving the state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from dagspec import git_batch, git_commit, git_merge, git_refs, graph
from dagspec.errors import DagspecError, GitError
from dagspec.lifecycle import RunState, SpecState
from dagspec.workspace import branch_name

ATTEMPTS = 3
"""How many times a join is built again when the integration branch moves under it."""


class JoinConflict(DagspecError):
    """A spec's work conflicts with the work of the specs joined before it."""


def integration_branch(run_id: str) -> str:
    """``dag/<run>/_integration``."""
    return f"dag/{run_id}/_integration"


def tip(repo: Path, run_id: str, base_commit: str) -> str:
    """The integration branch's tip; created at ``base_commit`` when it does not exist."""
    ref = f"refs/heads/{integration_branch(run_id)}"
    current = git_refs.rev_parse(repo, ref)
    if current is None:
        git_merge.set_branch(repo, integration_branch(run_id), base_commit)
        current = base_commit
    return current


def join(
    repo: Path,
    run_id: str,
    base_commit: str,
    *,
    spec_id: str,
    branch: str,
    message: str,
    sign: bool | None = None,
    known: str | None = None,
) -> str | None:
    """Join spec ``spec_id``'s ``branch`` to the integration branch as one merge commit
    named by ``message``, signed when ``sign`` (None: as ``git_commit.signs_commits`` says).

    Returns the new merge commit, or None when the integration branch already had the
    branch's tip. Raises ``JoinConflict`` naming the conflicting files (nothing is written
    then), ``DagspecError`` when ``branch`` is gone or the integration branch keeps moving.
    ``known``: the integration branch's tip as the run left it (``keep``).
    """
    spec_tip = git_refs.rev_parse(repo, f"refs/heads/{branch}")
    if spec_tip is None:
        raise DagspecError(f"the branch {branch} is gone: the spec's work cannot be joined")
    ref = f"refs/heads/{integration_branch(run_id)}"
    if known is not None:
        keep(repo, run_id, known, spec_id)
    for _ in range(ATTEMPTS):
        head = tip(repo, run_id, base_commit)
        if git_refs.is_ancestor(repo, spec_tip, head):
            return None
        sign = git_commit.signs_commits(repo) if sign is None else sign
        commit = _merge(repo, run_id, spec_id, (head, spec_tip), branch, message, sign)
        if git_merge.update_ref(repo, ref, commit, head, message=f"dag join {branch}"):
            return commit
    raise DagspecError(
        f"the branch {integration_branch(run_id)} kept moving while joining {branch}: "
        f"run `dag resume {run_id}`"
    )


def join_new_work(
    repo: Path,
    run_id: str,
    base_commit: str,
    *,
    head: str | None,
    spec_id: str,
    branch: str,
    message: str,
    sign: bool,
) -> str:
    """``join`` for a spec whose branch has a commit made just now (so the integration
    branch cannot have it yet), onto ``head``, the integration branch's tip as the caller
    knows it (None: the branch does not exist yet; it is created at ``base_commit``).
    Three git processes: the merge, its commit, the compare-and-swap; when the branch is
    not at ``head`` after all, ``join`` does it again, asking git. Returns the new tip;
    raises as ``join``."""
    ref = f"refs/heads/{integration_branch(run_id)}"
    parents = (head or base_commit, f"refs/heads/{branch}")
    commit = _merge(repo, run_id, spec_id, parents, branch, message, sign)
    if git_merge.update_ref(repo, ref, commit, head or "", message=f"dag join {branch}"):
        return commit
    joined = join(
        repo,
        run_id,
        base_commit,
        spec_id=spec_id,
        branch=branch,
        message=message,
        sign=sign,
        known=head,
    )
    return joined or tip(repo, run_id, base_commit)


def keep(repo: Path, run_id: str, known: str, spec_id: str) -> None:
    """Make sure the integration branch still holds what the run joined, ``known`` (its
    tip as the run left it): deleted by someone (``git branch -D``) it is put back there,
    its commits being still in the repository; moved by someone to a commit without
    ``known`` it is refused, since joining there would leave the specs joined before
    without a merge commit of their own. Raises ``DagspecError`` saying how to put it back."""
    name = integration_branch(run_id)
    current = git_refs.rev_parse(repo, f"refs/heads/{name}")
    if current is None:
        if git_refs.rev_parse(repo, f"{known}^{{commit}}") is not None:
            git_merge.update_ref(repo, f"refs/heads/{name}", known, "", message="dag restore")
            return
        current = "nothing"
    elif git_refs.is_ancestor(repo, known, current):
        return
    raise DagspecError(
        f"the branch {name} was moved by someone else during run {run_id} (it holds the "
        f"work of the specs joined so far, at {known[:12]}, and is now at {current[:12]}): "
        f"put it back with `git branch -f {name} {known}`, then `dag retry {run_id} {spec_id}`"
    )


def _merge(
    repo: Path,
    run_id: str,
    spec_id: str,
    parents: tuple[str, str],
    branch: str,
    message: str,
    sign: bool,
) -> str:
    """The join's merge commit of ``parents`` (integration tip, spec tip), as objects."""
    merged = git_merge.merge_tree(repo, *parents)
    if merged.conflicts:
        raise JoinConflict(
            f"its work on {branch} conflicts with the work of the run's specs that "
            f"completed before it, in {', '.join(merged.conflicts)}: merge "
            f"{integration_branch(run_id)} into {branch} by hand and commit, then "
            f"`dag retry {run_id} {spec_id}`"
        )
    return git_commit.commit_tree(repo, merged.tree, parents, message, sign=sign)


def joins(
    repo: Path, run_id: str, base_commit: str, *, listed: Mapping[str, str] | None = None
) -> dict[tuple[str, str], str]:
    """Each join commit of the run, keyed by ``(first parent, spec tip)``; empty when the
    integration branch or the base commit is gone. ``listed``: the run's branches as just
    read (``run_branches``), from a caller that knows the base commit is there."""
    ref = f"refs/heads/{integration_branch(run_id)}"
    if listed is not None:
        head = listed.get(ref)
    else:
        head = git_refs.rev_parse(repo, ref)
        if head is not None and git_refs.rev_parse(repo, base_commit) is None:
            return {}
    if head is None:
        return {}
    return {
        (ours, theirs): sha
        for sha, ours, theirs in git_merge.first_parent_merges(repo, head, base_commit)
    }


def drop(repo: Path, run_id: str, *, listed: Mapping[str, str] | None = None) -> None:
    """Delete the integration branch: once every spec of the run is merged, nothing needs
    it (``merge.merge_run`` calls this). Until then it stays, for the dependents of specs
    whose branches were deleted after their merge. ``listed``: the run's branches as the
    caller read them (``run_branches``), else git is asked; one deleted by someone since
    (``git branch -D``) is gone as wanted."""
    name = integration_branch(run_id)
    there = (
        f"refs/heads/{name}" in listed if listed is not None else git_refs.branch_exists(repo, name)
    )
    if not there:
        return
    try:
        git_refs.delete_branch(repo, name, force=True)
    except GitError:
        if git_refs.branch_exists(repo, name):
            raise


def merge_order(
    deps: Mapping[str, Sequence[str]],
    joined: Mapping[tuple[str, str], str],
    tips: Mapping[str, str | None],
) -> list[str]:
    """A dependency order with the specs that joined the integration branch first, in the
    order they joined (itself a dependency order), so that the chain can take their join
    commits as they are; the others after, in ``graph.topological_order``. ``tips``: each
    spec's branch tip (``spec_tips``)."""
    position = {spec_tip: index for index, (_, spec_tip) in enumerate(joined)}
    topological = graph.topological_order(deps)
    rank = {
        spec_id: (position.get(tips.get(spec_id) or "", len(position)), index)
        for index, spec_id in enumerate(topological)
    }
    # Still a dependency order when a spec that joined depends on one whose join is not
    # known (its branch deleted, the integration branch rebuilt): the dependency first.
    left, order, placed = sorted(topological, key=rank.__getitem__), [], set()
    while left:
        ready = next(s for s in left if all(d in placed for d in deps.get(s, ())))
        left.remove(ready)
        order.append(ready)
        placed.add(ready)
    return order


def run_branches(repo: Path, run_id: str) -> dict[str, str]:
    """``{full ref name: commit}`` of the run's branches ``dag/<run>/...``: its specs', the
    integration branch and ``_merged``; one ``git for-each-ref``."""
    return git_batch.branch_tips(repo, f"refs/heads/dag/{run_id}/")


def spec_tips(
    repo: Path, state: RunState, *, listed: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """Each spec's branch tip (None: no such branch), from ``listed`` (``run_branches``,
    read now when not given; a branch recorded under another name is asked for alone)."""
    prefix = f"refs/heads/dag/{state.run_id}/"
    listed = run_branches(repo, state.run_id) if listed is None else listed
    tips: dict[str, str | None] = {}
    for spec in state.specs:
        ref = f"refs/heads/{spec.branch or branch_name(state.run_id, spec.id)}"
        tips[spec.id] = listed.get(ref) if ref.startswith(prefix) else git_refs.rev_parse(repo, ref)
    return tips


def joined_tips(repo: Path, state: RunState, specs: Sequence[SpecState]) -> dict[str, str]:
    """The tip each of ``specs`` joined the integration branch with, found by its join's
    message (``merge_chain.merge_message``'s first line), for specs whose branch was deleted; one
    ``git log``."""
    head = f"refs/heads/{integration_branch(state.run_id)}"
    subjects = {f"Merge {s.branch or branch_name(state.run_id, s.id)}: {s.id}": s.id for s in specs}
    found: dict[str, str] = {}
    for parents, subject in git_merge.first_parent_subjects(repo, head, state.base_commit):
        if subject in subjects and len(parents) == 2:
            found.setdefault(subjects[subject], parents[1])
    return found


@attrs.define
class MergeFacts:
    """What building ``dagspec.merge``'s chain asks git once, not once per spec (issue
    16): the joins, every spec's branch tip, (once a merge commit is made) whether to sign
    it, and the tree of each commit of the chain (known as it is made)."""

    joins: Mapping[tuple[str, str], str]  # ``joins``
    tips: Mapping[str, str | None]
    repo: Path
    branches: Mapping[str, str] = attrs.field(factory=dict)  # ``run_branches``, as read
    signs: bool | None = None
    replayed: Mapping[str, str] = attrs.field(factory=dict)  # ``replay.merged_replays``
    dropped: frozenset[str] = frozenset()  # merged, by a commit the base no longer has
    moved: frozenset[str] = frozenset()  # merged, their branch moved on since (``moved_on``)
    flattened: frozenset[str] = frozenset()  # merged, that merge rewritten, the work kept
    trees: dict[str, str] = attrs.field(factory=dict)  # commit: its tree

    @classmethod
    def read(cls, repo: Path, state: RunState) -> MergeFacts:
        """The facts of a base branch that still has the run's base commit (``rewritten``
        is False): the run's branches read once, the joins in one more process."""
        listed = run_branches(repo, state.run_id)
        made = joins(repo, state.run_id, state.base_commit, listed=listed)
        tips = spec_tips(repo, state, listed=listed)
        gone = [s for s in state.specs if tips[s.id] is None and not s.merged]
        if gone and made:  # its work is on the integration branch: merged from there
            tips.update(joined_tips(repo, state, gone))
        for spec in gone:  # its merge the base branch lost holds its work: merged from there
            if tips[spec.id] is None and spec.dropped_merge is not None:
                tips[spec.id] = git_refs.rev_parse(repo, f"{spec.dropped_merge}^2")
        return cls(made, tips, repo, listed)

    def sign(self) -> bool:
        if self.signs is None:
            self.signs = git_commit.signs_commits(self.repo)
        return self.signs

    def tree(self, commit: str) -> str:
        """The tree object of ``commit``, asked of git only for one the chain did not make."""
        if commit not in self.trees:
            self.trees[commit] = git_merge.tree_of(self.repo, commit)
        return self.trees[commit]


# --- a rewritten base -----------------------------------------------------------------------


class RewrittenBase(DagspecError):
    """The base branch no longer has the run's base commit: merging would undo a rewrite."""


def rewritten(repo: Path, state: RunState, tip: str) -> bool:
    """Whether the base branch, at ``tip``, no longer has the run's base commit (no git
    process when ``tip`` is that commit: the base branch has not moved)."""
    if tip == state.base_commit:
        return False
    known = git_refs.rev_parse(repo, state.base_commit) is not None
    return not known or not git_refs.is_ancestor(repo, state.base_commit, tip)


def merge_command(repo: Path, state: RunState, *, dag: str = "dag") -> str:
    """What to type to merge the run now, as ``dag merge`` itself would say when it
    refuses: ``dag merge RUN --onto-current`` for a rewritten base branch
    (``refuse_rewritten``), the branch made again first when it is gone; else ``dag merge
    RUN``. For ``dag status``'s ``next:`` line, which must not send the user into a refusal."""
    plain = f"{dag} merge {state.run_id}"
    tip = git_refs.rev_parse(repo, f"refs/heads/{state.base_branch}")
    if tip is None:
        return f"git branch {state.base_branch} {state.base_commit[:12]}, then {plain}"
    return f"{plain} --onto-current" if rewritten(repo, state, tip) else plain


def refuse_rewritten(repo: Path, state: RunState, tip: str) -> None:
    """Raise ``RewrittenBase`` when the run's base commit is not an ancestor of ``tip``:
    every spec branch descends from it, so merging any of them would bring back the commits
    the user removed from the base branch. The message names them."""
    if not rewritten(repo, state, tip):
        return
    if git_refs.rev_parse(repo, state.base_commit) is not None:
        lost = git_refs.commits_lacking(repo, state.base_commit, [tip])
    else:
        lost = [state.base_commit[:12]]
    shown = "; ".join(lost[:5]) + (f"; and {len(lost) - 5} more" if len(lost) > 5 else "")
    raise RewrittenBase(
        f"the branch {state.base_branch} was rewritten since run {state.run_id} started "
        f"from {state.base_commit[:12]}: merging the run would bring back {len(lost)} "
        f"commit(s) it no longer has ({shown}); nothing was merged: run `dag merge "
        f"{state.run_id} --onto-current` to replay each spec's own changes onto "
        f"{state.base_branch} as it is now, or abandon the run (`dag cleanup {state.run_id} "
        "--force`) and start a new `dag run`"
    )
