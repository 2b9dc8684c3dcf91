"""``dag cleanup``: remove a run's worktrees, and its branches already merged.

It touches only what is provably the run's own: a worktree recorded in the run's state
that git lists as a worktree of this repository on the run's branch ``dag/<run>/<spec>``,
one git lists on such a branch that the state does not record (a driver killed between
``git worktree add`` and the save of the state left it, as ``dagspec.ahead`` says), and
the branches ``dag/<run>/<spec>``, ``dag/<run>/_merged`` and ``dag/<run>/_integration``.
Work that would be lost (uncommitted files, commits not on the base branch) is kept unless
``--force``, which first says what goes. A completed spec whose branch goes because its work
is on the base branch (the user merged it by hand) is recorded as merged, as ``dag merge``
records it. ``--forget`` then removes the run's own record too (``dagspec.forget``), unless
a worktree of the run would stay.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import attrs
import trio

from dagspec import (
    adrift,
    agent,
    checkout_move,
    checkout_safety,
    compat,
    forget,
    git_batch,
    git_merge,
    git_refs,
    git_said,
    git_worktree,
    lifecycle,
    moved_on,
    onto_advice,
    relocate,
    removal,
    unseen_work,
    worktree,
)
from dagspec.errors import EXIT_FAILED, EXIT_OK, GitError, StateError, as_typed, print_error
from dagspec.integration import integration_branch
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.merge_report import names
from dagspec.state import load, run_lock, save, settled
from dagspec.undeleted import locks_in_the_way
from dagspec.words import counted
from dagspec.workspace import (
    RunPaths,
    branch_name,
    check_run_id,
    merged_branch,
    own_run_directory,
    resolved,
    worktree_root,
)


class Step(NamedTuple):
    """One removal: a worktree (``spec_id`` set) or a branch, and what it loses."""

    name: str
    target: str
    spec_id: str | None
    lost: tuple[str, ...]
    loss: str  # "3 uncommitted files", "2 commits not on main"; "" when nothing is lost


class Kept(NamedTuple):
    message: str
    force_would_remove: bool
    worktree: forget.Stays | None = None  # a worktree that stays: no run is forgotten then
    unmerged: bool = False  # a branch with work the base lacks: it stays, even with --force
    adrift: bool = False  # a worktree holding commits on no branch: it stays, even with --force
    loses: bool = True  # with force_would_remove: --force loses what its line names
    commits_stay: bool = False  # a worktree --force removes whose commits stay on its branch
    moved: bool = False  # with unmerged: a merged spec's branch moved on after its merge
    refused: bool = False  # a branch a stale lock kept git from deleting: no run is forgotten


@attrs.define
class Plan:
    """What cleanup removes, keeps, and forgets (recorded worktrees that are not there)."""

    steps: list[Step] = attrs.Factory(list)
    kept: list[Kept] = attrs.Factory(list)
    forgotten: list[str] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)
    strays: list[str] = attrs.Factory(list)  # branches autospec switched a worktree to
    strays_of: dict[str, tuple[str, ...]] = attrs.Factory(dict)  # stray -> spec branches
    # branch -> (spec, the commit that merged it): completed specs whose work is on the base
    on_base: dict[str, tuple[str, str | None]] = attrs.Factory(dict)
    # the base branch rewritten since the run: the run's base commit (and those before it),
    # which the user dropped, is not a branch's work, and no advice is to `git merge` one
    # (a base commit pruned is on no branch: `git merge` cannot bring it back)
    dropped: tuple[str, ...] = ()
    rewritten: bool = False
    forgetting: bool = False  # --forget: no `dag merge RUN` is advised, the run goes
    detached: set[str] = attrs.Factory(set)  # spec branches a kept worktree is not on


def cleanup(repo: Path, run_id: str, *, force: bool, forget_run: bool = False) -> int:
    """Remove what is safe (everything with ``force``); exit 1 if anything was kept.
    ``forget_run``: then remove the run's record, unless a worktree of it stays (exit 1)."""
    paths = RunPaths(repo, check_run_id(run_id))
    _refuse_if_driven(load(paths), " --forget" if forget_run else "")
    checkout_move.finish_interrupted(repo)
    with run_lock(paths):
        # a killed driver's run settled before anything is saved: saving it as it was (marked
        # running) would move when it was last seen alive to now (``state.last_seen_alive``)
        state = _end_survivors(paths, settled(relocate.arrive(paths, load(paths))))
        _take_back(repo, state)
        plan = plan_cleanup(repo, state, force=force, forgetting=forget_run)
        if forget_run and _worktrees_kept(plan):  # before anything is removed
            return _refuse_forgetting(run_id, plan, removed=False)
        _print_losses(plan)
        cleaned = _carry_out(repo, state, plan)
        if forget_run and not _worktrees_kept(plan) and not _refused(plan):
            forget.forget_run(paths)
        elif cleaned != state:
            save(cleaned, paths.state_file)
    if forget_run:
        return _report_forgetting(run_id, plan)
    return _report(run_id, plan, force)


def _refuse_if_driven(state: RunState, flags: str) -> None:
    if settled(state).status is RunStatus.RUNNING:
        raise StateError(
            f"run '{state.run_id}' is being driven by process {state.driver_pid}: wait for "
            f"it to finish, or stop it, then run `dag cleanup {state.run_id}{flags}` again"
        )


def _end_survivors(paths: RunPaths, state: RunState) -> RunState:
    """End the agents a killed driver left running (``agent.end_survivors``, as a drive
    does first) before their worktrees are judged or removed; the state that records it."""
    if not any(spec.attempts for spec in state.specs):  # no agent was ever started
        return state
    trio.run(agent.end_survivors, state, paths, agent.GRACE)
    ended, _ = lifecycle.agents_gone(state)
    if ended != state:
        save(ended, paths.state_file)
    return ended


def _take_back(repo: Path, state: RunState) -> None:
    """An autospec below 0.10.4 leaves a failed spec's worktree on a branch of its own
    (``NNN-name``): its work goes back on the spec's branch first (``compat.take_back``), so
    what is kept, or lost with ``--force``, is judged there, and a retry finds it."""
    for spec in state.specs:
        if spec.worktree is not None:
            ours, base = branch_name(state.run_id, spec.id), state.base_commit
            compat.take_back(repo, Path(spec.worktree), branch=ours, base_commit=base)


def plan_cleanup(repo: Path, state: RunState, *, force: bool, forgetting: bool = False) -> Plan:
    """Decide, without changing anything, what to remove and what to keep."""
    plan = Plan(forgetting=forgetting)
    known = {resolved(path): branch for path, branch in git_worktree.worktrees(repo).items()}
    quiet = unseen_work.quiet_specs(repo, state, [s.id for s in state.specs if s.worktree])
    for spec in state.specs:
        if spec.worktree is not None:
            path = Path(spec.worktree)
            _plan_worktree(plan, repo, known, path, spec.id, state, force, quiet)
    _plan_unrecorded(plan, repo, known, state, force)
    removed = {Path(step.target) for step in plan.steps}
    checked_out = {b: p for p, b in known.items() if b is not None and p not in removed}
    for kept in plan.kept:  # a rebase holds its branch with HEAD detached: git lists none
        if kept.worktree is not None and kept.worktree.busy is not None:
            checked_out.setdefault(kept.worktree.branch, resolved(kept.worktree.path))
    for kept in plan.kept:  # detached with commits on no branch: its advice switches back
        if kept.worktree is not None and kept.worktree.branch not in checked_out:
            checked_out[kept.worktree.branch] = resolved(kept.worktree.path)
            plan.detached.add(kept.worktree.branch)
    strays: list[tuple[str | None, str]] = [(None, b) for b in plan.strays]
    plan.rewritten, plan.dropped = onto_advice.dropped_base(repo, state)
    for spec_id, branch in _branches(state) + strays:
        if git_refs.branch_exists(repo, branch):
            _plan_branch(plan, repo, state, spec_id, branch, checked_out, force)
    plan.steps += [Step(b, b, None, (), "") for b in _lost_branches(repo, state, checked_out)]
    return plan


def _lost_branches(repo: Path, state: RunState, checked_out: dict[str, Path]) -> list[str]:
    """The run's branches that point at a commit the repository no longer has (``git gc
    --prune=now`` after a reset), not checked out in a worktree that stays: deleting one
    loses nothing (git fails on it: ``missing object``), so they go, after the worktrees."""
    listed = git_batch.branch_tips(repo, f"refs/heads/dag/{state.run_id}/")
    there = git_batch.present(repo, listed.values())
    lost = [ref.removeprefix("refs/heads/") for ref, tip in listed.items() if tip not in there]
    return [branch for branch in lost if branch not in checked_out]


def _plan_worktree(
    plan: Plan,
    repo: Path,
    known: dict[Path, str | None],
    path: Path,
    spec_id: str,
    state: RunState,
    force: bool,
    quiet: set[str],
) -> None:
    """A worktree recorded in the run's state is the run's, whatever branch autospec left
    it on (v0.7.3 switches to its own ``NNN-name`` branch, which then goes too unless it
    holds commits found nowhere else), unless it is the main checkout or another run's (on
    another ``dag/`` branch); one git does not list is only forgotten. What it would lose:
    its uncommitted files, and what git status does not show (``dagspec.unseen_work``:
    submodule commits found only there; files git ignores written by a ``quiet`` spec)."""
    ours = branch_name(state.run_id, spec_id)
    where = resolved(path)
    on = known.get(where)
    anothers = on is not None and on.startswith("dag/") and on != ours
    if where not in known or where == resolved(repo) or anothers:
        plan.forgotten.append(spec_id)
        if path.exists():
            plan.notes.append(f"left {path} alone: it is not this run's worktree")
        return
    if on not in (ours, None):
        plan.strays.append(str(on))
        plan.strays_of[str(on)] = (ours,) if git_refs.branch_exists(repo, ours) else ()
    try:
        files = tuple(worktree.unsaved_work(path))
    except GitError:  # git status fails: ``bad object HEAD``?
        gone = git_refs.lost_commit(path, "HEAD")
        if gone is None or on is None:
            raise
        _plan_lost(plan, path, str(where), spec_id, (on, gone), force)
        return
    if on == ours and not git_refs.branch_exists(repo, ours):  # its commits on no branch now
        gone = adrift.branch_deleted(path, ours, spec_id, state.run_id, repo)
        _keep_commits(plan, path, (ours, state.run_id), gone)
        return
    unseen = unseen_work.unseen(path, state, spec_id, quiet=quiet, submodules=True)
    busy = checkout_safety.operation_in(path)  # what it made may be on no branch yet
    found = adrift.commits(path, repo)  # a detached HEAD only: --force never drops a commit
    if found and busy is None:
        _keep_commits(
            plan, path, (ours, state.run_id), f"{adrift.held(found)}: {adrift.keep_them(found)}"
        )
        return
    if busy is not None and (found or not force):
        stays = forget.Stays(path, "", ours, uncommitted=False, busy=busy, adrift=bool(found))
        said = f"it is in the middle of {busy}: end it, then `dag cleanup {state.run_id}`"
        if found:
            said += (
                f"; it holds {counted(len(found), 'commit')} on no branch ({names(found)}),"
                f" which `git -C {path} branch NAME HEAD` would keep"
            )
        kept = Kept(f"kept {path.name}: {said}", not found, stays, adrift=bool(found))
        plan.kept.append(kept)
        return
    under_way = (f"in the middle of {busy}",) if busy else ()
    lost = files + unseen.items() + under_way
    held = counted(len(files), "uncommitted file") if files else ""
    loss = ", ".join(
        filter(None, [held, unseen.loss(), "an operation of git's under way" * bool(busy)])
    )
    if lost and not force:
        stays = forget.Stays(path, loss, ours, uncommitted=True)
        said = f": {unseen.advice()}" if unseen and not files else f": {loss}{_first(files)}"
        plan.kept.append(Kept(f"kept {path.name}{said}", True, stays))
    else:
        plan.steps.append(Step(path.name, str(where), spec_id, lost, loss))


def _keep_commits(plan: Plan, path: Path, branch_and_run: tuple[str, str], said: str) -> None:
    """Keep a worktree whose commits no branch holds (``dagspec.adrift``), even with
    ``--force``, which is for uncommitted files, never for commits."""
    ours, run_id = branch_and_run
    stays = forget.Stays(path, "", ours, uncommitted=False, on_no_branch=said)
    message = (
        f"kept {path.name}: {said}, then `dag cleanup {run_id}` (--force never drops a commit)"
    )
    plan.kept.append(Kept(message, False, stays, adrift=True))


def _plan_lost(
    plan: Plan, path: Path, where: str, spec_id: str, branch_and_lost: tuple[str, str], force: bool
) -> None:
    """A worktree whose branch points at a commit the repository no longer has (pruned by
    ``git gc`` after a reset): its files are all that is left of its work, kept unless
    ``force``, which removes them, then the branch (which holds nothing: its commit is gone)."""
    branch, lost = branch_and_lost
    gone = f"the commit {lost[:12]} of {branch} is gone (pruned by `git gc`?)"
    if not force:
        stays = forget.Stays(path, "its files", branch, uncommitted=True, lost=True)
        message = f"kept {path.name}: {gone}, so its files are all that is left of its work"
        plan.kept.append(Kept(message, True, stays))
        return
    plan.steps.append(Step(path.name, where, spec_id, (f"every file: {gone}",), "its files"))


def _plan_unrecorded(
    plan: Plan, repo: Path, known: dict[Path, str | None], state: RunState, force: bool
) -> None:
    """A worktree git lists on a spec's branch ``dag/<run>/<spec>`` that the state does not
    record: a driver killed between ``git worktree add`` and the save of the state made it
    (the worktree prepared ahead, ``dagspec.ahead``, or any spec's). It is the run's; what
    it holds (uncommitted files, commits neither the base nor the integration branch has)
    is kept unless ``force``."""
    recorded = {resolved(Path(s.worktree)) for s in state.specs if s.worktree is not None}
    ids = {branch_name(state.run_id, spec.id): spec.id for spec in state.specs}
    starts = [
        state.base_branch,
        state.base_commit,
        f"refs/heads/{integration_branch(state.run_id)}",
    ]
    starts = [start for start in starts if git_refs.rev_parse(repo, start) is not None]
    for path, on in known.items():
        if on not in ids or path in recorded or path == resolved(repo):
            continue
        files = tuple(worktree.unsaved_work(path))
        commits = git_refs.commits_lacking(repo, f"refs/heads/{on}", starts)
        held = counted(len(files), "uncommitted file") if files else ""
        lost = ", ".join(filter(None, [held, _commits(len(commits), state)]))
        if lost and not force:
            stays = forget.Stays(path, lost, str(on), uncommitted=bool(files))
            message = f"kept {path}: {lost}{_first(files)}, not recorded in the run"
            plan.kept.append(
                Kept(message, True, stays, loses=bool(files), commits_stay=bool(commits))
            )
            continue
        # its commits, if any, are its branch's to lose (``_plan_branch``)
        plan.steps.append(Step(path.name, str(path), ids[on], files, held))


_FIRST_FILES = 3  # the uncommitted files a kept worktree's line names; then how many more


def _first(files: tuple[str, ...]) -> str:
    """`` (notes.txt, src/a.py and 2 more)``: the first uncommitted files, as ``git status
    --short`` has them (``XY path``) without their status, so the user knows what is kept."""
    return f" ({names((entry[3:] for entry in files), _FIRST_FILES)})" if files else ""


def _commits(count: int, state: RunState) -> str:
    return counted(count, "commit") + f" not on {state.base_branch}" if count else ""


def _branches(state: RunState) -> list[tuple[str | None, str]]:
    """The run's own branches: one per spec, and where a blocked merge left its result."""
    branches: list[tuple[str | None, str]] = [
        (spec.id, branch_name(state.run_id, spec.id)) for spec in state.specs
    ]
    extra = [merged_branch(state.run_id), integration_branch(state.run_id)]
    return [*branches, *((None, b) for b in extra if all(b != ours for _, ours in branches))]


def _plan_branch(
    plan: Plan,
    repo: Path,
    state: RunState,
    spec_id: str | None,
    branch: str,
    checked_out: dict[str, Path],
    force: bool,
) -> None:
    """A branch goes only when the base branch has all its work as git says now: in
    history, or in content (a squash, a replay of the spec's merge still on the base). The
    state saying "merged" is not enough (the merge may have been dropped since: a reset, an
    aborted rebase), nor is ``force``, which is for uncommitted files: a branch with work
    the base lacks is kept, named with how to take or drop it."""
    flagged = spec_id is not None and state.spec(spec_id).merged
    in_history = git_refs.is_ancestor(repo, branch, state.base_branch)
    # A stray branch's commits count as saved when the spec branch it was forked for has them.
    elsewhere = [state.base_branch, *plan.dropped, *(plan.strays_of.get(branch, ()))]
    if in_history:
        lost: tuple[str, ...] = ()
    elif spec_id is None:  # _merged, _integration: dagspec's merges of the specs' work
        lost = tuple(
            git_merge.changes_not_on(repo, branch, state.base_branch, dropped=plan.dropped)
        )
    else:
        lost = tuple(git_refs.commits_lacking(repo, branch, elsewhere))
        if lost and (
            git_merge.adds_nothing(repo, state.base_branch, branch)
            or (flagged and removal.replayed_on_base(repo, state, spec_id, branch))
        ):
            lost = ()  # every change is on the base branch: squash-merged, say
    if spec_id is not None and not flagged and not lost:
        _note_on_base(plan, repo, state, spec_id, branch, in_history)
    loss = _commits(len(lost), state)
    if branch in checked_out:
        where = f"checked out in {checked_out[branch]}"
        if branch in plan.detached:  # a worktree kept detached goes back to it
            where = f"the branch of the worktree {checked_out[branch]}, which stays"
        plan.kept.append(Kept(f"kept {branch}: {', '.join(filter(None, [loss, where]))}", False))
    elif lost:
        dropped = f" (its merge is no longer on {state.base_branch})" if flagged else ""
        moved = (
            flagged
            and spec_id is not None
            and moved_on.moved_on(
                state.spec(spec_id), git_refs.rev_parse(repo, f"refs/heads/{branch}"), repo
            )
        )  # a commit made on it after its merge: not a merge dropped
        if moved:  # forgotten, no run is left to merge it (git merge brings back no dropped base)
            command = onto_advice.merge_command(state.run_id, onto=plan.rewritten)
            takes = f"git merge {branch}" if plan.forgetting and not plan.rewritten else command
            dropped = f" (made after its merge: `{takes}` takes it)"
        message = f"kept {branch}: {loss}{dropped}"
        plan.kept.append(Kept(message, False, unmerged=True, moved=moved))
    else:
        plan.steps.append(Step(branch, branch, None, lost, loss))


def _note_on_base(
    plan: Plan, repo: Path, state: RunState, spec_id: str, branch: str, in_history: bool
) -> None:
    """A completed spec not recorded as merged whose branch goes because its work is on the
    base branch (the user merged, fast-forwarded or squashed it, or ``_merged``): it is
    merged, as ``dag merge`` would record it ("already merged"), so that deleting the branch
    does not leave it waiting for a merge that can no longer find it. The merge commit is
    the one on the base branch's first-parent line that merged the branch's tip, if any."""
    if state.spec(spec_id).status is not SpecStatus.COMPLETED:
        return  # a failed spec's branch with nothing of its own: not merged
    tip = git_refs.rev_parse(repo, f"refs/heads/{branch}")
    commit = None
    if in_history and tip is not None and git_refs.rev_parse(repo, state.base_commit) is not None:
        commit = git_merge.merge_commit_of(repo, tip, state.base_branch, state.base_commit)
    plan.on_base[branch] = (spec_id, commit)


def _print_losses(plan: Plan) -> None:
    """Before ``--force`` removes unsaved work, say exactly what goes."""
    losing = [step for step in plan.steps if step.lost]
    if not losing:
        return
    print("--force: this work will be lost:")
    for step in losing:
        print(f"  {step.name}: {step.loss}")
        print("".join(f"    {item}\n" for item in step.lost[:_LISTED]), end="")
        if len(step.lost) > _LISTED:  # 60,000 untracked files are not 60,000 lines
            print(f"    and {len(step.lost) - _LISTED} more")


_LISTED = 50  # the items of one removal that --force lists, then how many more


def _carry_out(repo: Path, state: RunState, plan: Plan) -> RunState:
    """Remove the planned worktrees and branches, and return the state that records it; what
    git refuses to remove joins ``plan.kept``; a completed spec whose branch went because its
    work is on the base branch is recorded as merged (``plan.on_base``)."""
    merges: dict[str, str | None] = {}
    staying: dict[str, str] = {}  # spec branch -> its worktree git would not remove
    for step in plan.steps:
        if step.spec_id is None and step.target in staying:  # its worktree stays: so does it
            said = f"the branch of the worktree {staying[step.target]}, which stays"
            plan.kept.append(Kept(f"kept {step.name}: {said}", False))
            continue
        try:
            if step.spec_id is not None:
                worktree.remove_worktree(repo, Path(step.target), force=True)
            else:
                git_refs.delete_branch(repo, step.target, force=True)
        except GitError as exc:
            reason = git_said.gist(said := exc.stderr or exc.stdout)
            if git_said.locks_in_the_way(said):  # and those git would meet next
                common = git_worktree.common_dir(repo)
                branches = [] if step.spec_id else [step.target]
                reason = git_said.locks_advice(locks_in_the_way(common, branches, said))
            stays = None
            if step.spec_id is not None:
                ours = branch_name(state.run_id, step.spec_id)
                stays = forget.Stays(Path(step.target), "", ours, uncommitted=False)
                staying[ours] = step.target
            message = f"kept {step.name}: git could not remove it: {reason}"
            locked = step.spec_id is None and bool(git_said.locks_in_the_way(said))
            plan.kept.append(Kept(message, False, stays, refused=locked))
            continue
        print(f"removed {step.target}" if step.spec_id else f"deleted branch {step.name}")
        if step.spec_id is None and step.target in plan.on_base:
            merges.update([plan.on_base[step.target]])
        recorded = step.spec_id and state.spec(step.spec_id).worktree  # else unrecorded
        if step.spec_id and recorded and resolved(Path(recorded)) == Path(step.target):
            plan.forgotten.append(step.spec_id)
    _remove_link_back(repo, state, {Path(s.target).parent for s in plan.steps if s.spec_id})
    removal.remove_emptied_places(repo, state)
    return lifecycle.record_merges(lifecycle.forget_worktrees(state, plan.forgotten), merges)


def _remove_link_back(repo: Path, state: RunState, emptied: set[Path]) -> None:
    """The run's worktrees moved elsewhere and linked back (``own_run_directory``): once
    their directory there is removed (``worktree.remove_worktree``), the link left behind,
    which leads nowhere, goes too. A link to anything else, or to what is still there, stays."""
    link = worktree_root(repo, state.options.worktree_root) / state.run_id
    if not os.path.islink(link) or os.path.lexists(target := resolved(link)):  # noqa: PTH114
        return
    if target in emptied and own_run_directory(link, target):
        link.unlink()
        print(f"removed {link} (the link to {target})")


def _worktrees_kept(plan: Plan) -> list[forget.Stays]:
    return [kept.worktree for kept in plan.kept if kept.worktree is not None]


def _refused(plan: Plan) -> list[str]:
    """The branches git would not delete (a stale lock file in its way): the run is not
    forgotten while they stay, as nothing would then delete them for it."""
    return [kept.message for kept in plan.kept if kept.refused]


def _refuse_forgetting(run_id: str, plan: Plan, *, removed: bool) -> int:
    """Each worktree that would outlive the run's record: one ``dag: error:`` line, what it
    holds and how to keep it (``forget.refusal``); the branches git would not delete: one
    line, what was in the way (named on each branch's line above)."""
    for stays in _worktrees_kept(plan):
        print_error(forget.refusal(run_id, stays, removed=removed))
    if refused := _refused(plan):
        print_error(forget.branches_refusal(run_id, len(refused)))
    return EXIT_FAILED


def _report_forgetting(run_id: str, plan: Plan) -> int:
    """What went and what stayed; the run is forgotten unless a worktree stayed (exit 1)."""
    for note in plan.notes:
        print(as_typed(note))
    for kept in plan.kept:
        print(as_typed(kept.message))
    if _worktrees_kept(plan) or _refused(plan):  # git refused one: the run stays recorded
        return _refuse_forgetting(run_id, plan, removed=True)
    kept_work = any(kept.unmerged for kept in plan.kept)  # merged ones have nothing to take
    said = forget.render_forgotten(run_id, kept_branches=kept_work, rewritten=bool(plan.dropped))
    print(as_typed(said), end="")
    return EXIT_OK


def _report(run_id: str, plan: Plan, force: bool) -> int:
    for note in plan.notes:
        print(as_typed(note))
    for kept in plan.kept:
        print(as_typed(kept.message))
    if not plan.kept:
        if not (plan.steps or plan.forgotten):
            print(f"nothing to clean up for run {run_id}")
        return EXIT_OK
    print_error(_kept_line(run_id, plan, force))
    return EXIT_FAILED


def _how_to_keep(plan: Plan) -> str:
    """How to keep the work of the worktrees kept: commit it there, on the spec's branch;
    but git cannot commit in one whose branch's commit is gone (``bad object HEAD``)."""
    worktrees = [k.worktree for k in plan.kept if k.force_would_remove and k.loses and k.worktree]
    ways = []
    if any(not (w.lost or w.busy) for w in worktrees) or not worktrees:
        ways.append("commit a worktree's files there, on its branch")
    if any(w.busy for w in worktrees):
        ways.append("end the operation of git's under way in one")
    if any(w.lost for w in worktrees):
        ways.append(
            "copy a worktree's files elsewhere: git cannot commit where its branch's commit is gone"
        )
    return "; ".join(ways)


def _kept_line(run_id: str, plan: Plan, force: bool) -> str:
    """What was kept, as worktrees and branches (each named on its line above), and what to
    do: keep the work (commit a worktree's files there, on the spec's branch), or lose it."""
    worktrees = len(_worktrees_kept(plan))
    kinds = [
        counted(worktrees, "worktree") if worktrees else "",
        counted(len(plan.kept) - worktrees, "branch", "branches")
        if len(plan.kept) > worktrees
        else "",
    ]
    what = f"kept {' and '.join(filter(None, kinds))} of run {run_id}, each named above"
    todo = []
    removable = [k for k in plan.kept if k.force_would_remove] if not force else []
    forced = f"`dag cleanup {run_id} --force` removes the worktrees too"
    stay = ", though not their commits, which stay on their branches"
    if any(k.loses for k in removable):
        stays = stay if any(k.commits_stay for k in removable) else ""
        todo.append(
            f"to keep that work, leave them ({_how_to_keep(plan)}); {forced}, and loses that "
            f"work{stays}"
        )
    elif removable:  # only worktrees whose commits are on their branches
        todo.append(f"{forced}; their commits stay on their branches")
    keeping = [k.worktree for k in plan.kept if k.adrift and k.worktree is not None]
    if any(w.busy for w in keeping):
        todo.append(
            "a worktree holding commits on no branch stays even with --force: put them on a "
            f"branch there, as its line says, end its operation, then `dag cleanup {run_id}`"
        )
    if any(not w.busy for w in keeping):
        todo.append(
            "a worktree whose commits no branch holds stays even with --force: keep them on a "
            f"branch, as its line says, then `dag cleanup {run_id}`"
        )
    if any(k.unmerged and not k.moved for k in plan.kept):
        take = forget.take_or_drop(run_id, rewritten=bool(plan.dropped))
        todo.append(f"a branch kept for its commits stays even with --force: {take}")
    if any(k.moved for k in plan.kept):
        todo.append(
            "a branch with a commit made after its spec's merge stays even with --force: "
            f"`{onto_advice.merge_command(run_id, onto=plan.rewritten)}` takes it"
        )
    return f"{what}: {'; '.join(todo)}" if todo else what + " with why"
    return EXIT_FAILED
