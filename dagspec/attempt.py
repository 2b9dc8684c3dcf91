"""One attempt at a spec, outside its agent: everything before it starts and after it exits.

Before: the spec's worktree made ready (created where its dependencies' work is, or
reopened), the autospec configuration copied in, the spec directory to continue found, the
command for the stages still missing chosen, a spec number reserved for a new spec, and the
agent's environment. After exit 0: the spec's directory found, all its work committed on its
branch, and the branch joined to the run's integration branch (``dagspec.integration``). An
attempt after one whose agent exited 0 but whose join failed (a conflict the user then
resolved by hand) runs no agent: its worktree is reopened, its work committed and joined.
Synchronous: a drive runs these in threads (``dagspec.spec_attempt``), several specs' at
once, and passes the run's state in; nothing here changes it. What must be serial is, under
one of the drive's ``Bookkeeping`` locks, and what the drive knows already is not asked of
git again (``dagspec.bookkeeping``): a new spec without dependencies costs three git
processes here (``worktree add``; ``add -A`` and ``commit``) and three for its join.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from dagspec import (
    autospec,
    compat,
    copies,
    git_env,
    git_refs,
    git_worktree,
    integration,
    spec_dirs,
    worktree,
)
from dagspec.bookkeeping import Bookkeeping
from dagspec.dagfile import Dag
from dagspec.errors import WaitStopped
from dagspec.lifecycle import RunState, SpecState
from dagspec.workspace import RunPaths, branch_name, worktree_path


@attrs.frozen
class Prepared:
    """A spec's worktree made ready, and what to run there."""

    path: Path
    branch: str
    call: autospec.Invocation | None  # None: its agent is done; its work is only joined
    env: dict[str, str]  # the agent's environment (``agent_env``)
    spec_dir: str | None  # the directory name under specs/, when the spec has one
    number: int  # the spec number reserved for specify, else 0


@attrs.define
class GitWorkspace:
    """The scheduler's worktree port, for real: git worktrees under ``root`` and the
    autospec ``executable``. The scheduler calls ``highest_number`` first, once a drive
    (it reads the drive's ``Bookkeeping``), then ``prepare`` and ``collect`` in threads,
    for several specs at once; ``release`` touches no git. ``go_on`` is called by a
    ``prepare`` whose turn at the worktrees lock has come, before it makes anything: it raises
    when the caller no longer wants the worktree (a drive passes
    ``trio.from_thread.check_cancelled``: the drive stopped while the thread waited)."""

    paths: RunPaths
    dag: Dag
    executable: str
    root: Path
    book: Bookkeeping | None = None
    go_on: Callable[[], None] = lambda: None

    def highest_number(self, run: RunState) -> int:
        self.book = Bookkeeping.load(Path(run.repo), run.run_id)
        return max(highest_number(run), self.book.floor)

    def _book(self, run: RunState) -> Bookkeeping:
        if self.book is None:  # called without ``highest_number``: a drive of its own
            self.highest_number(run)
        assert self.book is not None
        return self.book

    def prepare(self, run: RunState, spec_id: str, floor: int) -> Prepared:
        return prepare(
            run,
            run.spec(spec_id),
            dag=self.dag,
            paths=self.paths,
            executable=self.executable,
            root=self.root,
            floor=floor,
            book=self._book(run),
            go_on=self.go_on,
        )

    def collect(self, run: RunState, spec_id: str, path: Path, seen: str | None) -> str | None:
        book = self._book(run)
        name, committed = collect(run, run.spec(spec_id), path, seen, book)
        branch = run.spec(spec_id).branch or branch_name(run.run_id, spec_id)
        repo, message = Path(run.repo), _message(run, self.dag, spec_id)
        if name:  # known before the join makes it visible to the specs started after it
            book.collected[spec_id] = name
        with book.joining:
            if committed:  # a commit made just now: the integration branch cannot have it
                book.integration = integration.join_new_work(
                    repo,
                    run.run_id,
                    run.base_commit,
                    head=book.integration,
                    spec_id=spec_id,
                    branch=branch,
                    message=message,
                    sign=book.sign,
                )
            else:
                _join(run, book, spec_id, branch, message)
            book.joined.add(spec_id)
        return name

    def release(self, path: Path) -> None:
        spec_dirs.release_number(path)

    def discard(self, run: RunState, ready: Prepared) -> None:
        """Remove a worktree made ahead and never used, and its branch: git's own, fresh from
        the base, with nothing of an agent's in it (``dagspec.ahead``)."""
        repo = Path(run.repo)
        with self._book(run).worktrees:
            git_worktree.remove_worktree(repo, ready.path, force=True)
            git_refs.delete_branch(repo, ready.branch, force=True)


def _join(run: RunState, book: Bookkeeping, spec_id: str, branch: str, message: str) -> None:
    """Join a spec whose branch has no commit made just now (the agent committed its work
    itself, or left none), asking git what the integration branch has."""
    repo = Path(run.repo)
    joined = integration.join(
        repo,
        run.run_id,
        run.base_commit,
        spec_id=spec_id,
        branch=branch,
        message=message,
        sign=book.sign,
        known=book.integration,
    )
    book.integration = joined or git_refs.rev_parse(
        repo, f"refs/heads/{integration.integration_branch(run.run_id)}"
    )


def prepare(
    run: RunState,
    spec: SpecState,
    *,
    dag: Dag,
    paths: RunPaths,
    executable: str,
    root: Path,
    floor: int,
    book: Bookkeeping,
    go_on: Callable[[], None] = lambda: None,
) -> Prepared:
    """Make the spec's worktree ready (under ``root``) and choose the command to run there:
    none when its agent finished in an earlier attempt (``SpecState.agent_done``) and its
    worktree is still there, holding that work (one deleted since took what was not
    committed with it: the agent runs again, and autospec skips what the branch has). A
    new spec gets a number above ``floor`` (``spec_dirs.reserve_number``). ``go_on`` is
    called once ``book.worktrees`` is held, before anything is made: what it raises,
    nothing of the spec's is made (a stop does not wait for a queue of ``git worktree
    add``)."""
    repo = Path(run.repo)
    path = Path(spec.worktree) if spec.worktree else worktree_path(root, run.run_id, spec.id)
    branch = spec.branch or branch_name(run.run_id, spec.id)
    with book.worktrees:
        go_on()  # the last moment to give up: from here on the worktree is made and returned
        # else its uncommitted work, if any, went with it (a plain directory left in its
        # place is none of it: ``reopen_worktree`` refuses it, or recreates it when empty)
        kept = path.is_dir() and git_worktree.is_registered(path)
        # autospec < 0.10.4 may have left it on its own branch; taken back, the spec's
        # branch may be one the drive did not know of
        taken = spec.branch is not None and compat.take_back(
            repo, path, branch=branch, base_commit=run.base_commit
        )
        if taken:
            book.branches[branch] = git_refs.rev_parse(repo, f"refs/heads/{branch}") or ""
        afresh = spec.branch is None or not _reopenable(path, branch, book)
        if afresh:
            # New, or its branch is gone with no worktree holding it (`dag cleanup` removes
            # a branch without commits of its own): nothing of it is left; it starts afresh.
            start = _start_point(run, dag, spec.id, book)
            exists = branch in book.branches
            if spec.branch is not None:  # taken up again: git may hold its deleted worktree
                from dagspec import adrift  # only for specs started before

                adrift.forget_deleted(repo, path, branch)  # a record `worktree add` refuses
            worktree.create_worktree(
                repo, path, branch=branch, start=start, exists=exists, go_on=go_on
            )
            compat.note_branches(path, book.local)  # none of them is autospec's stray one
        else:
            worktree.reopen_worktree(repo, path, branch=branch, go_on=go_on)
            worktree.remove_stale_locks(path)  # the last attempt's agent is gone
    if spec.agent_done and not afresh and kept:  # no agent: its work is there, to join
        _refuse_unresolved(run, spec.id, path)
        return Prepared(path, branch, None, {}, _dir_name(spec.spec_dir), 0)
    skipped = worktree.copy_configuration(repo, path)
    copies.note_skipped(paths.log_file(spec.id), skipped, "configuration")
    last_stage = spec.stage if spec.attempts else None
    spec_dir = _spec_dir_to_continue(run, spec, path, last_stage, book, afresh=afresh)
    present = autospec.artifacts_in(path / "specs" / spec_dir) if spec_dir else frozenset()
    if spec_dir and "tasks.yaml" in present:
        tasks = path / "specs" / spec_dir / "tasks.yaml"
        if not restore_tasks(tasks, paths.kept_tasks(spec.id)):
            present -= {"tasks.yaml"}  # torn with no whole copy: made again, not trusted
    spec_flag = autospec.spec_flag_works(run.autospec_version)
    call = autospec.invocation(
        executable,
        description=dag.features[spec.id].description,
        spec_dir=spec_dir,
        present=autospec.trusted(present, last_stage),
        spec_flag=spec_flag,
    )
    if spec_dir and not spec_flag and call.stage != "specify":
        compat.make_newest(path / "specs", spec_dir)  # what autospec goes on without --spec
    number = 0
    if call.stage == "specify":
        try:
            number = book.hand_out(path, floor, run.run_id, spec.id, _asks_to_stop(go_on))
        except WaitStopped:  # the drive stopped: the worktree is returned, to be called off
            number = 0
    return Prepared(
        path, branch, call, agent_env(paths, spec.id, call, book.identity), spec_dir, number
    )


def _asks_to_stop(go_on: Callable[[], None]) -> Callable[[], bool]:
    """``go_on`` as a question: whether the caller stopped (what ``go_on`` raises, in a
    drive ``trio.Cancelled``, caught in this thread; the drive's task is still cancelled)."""

    def stopped() -> bool:
        try:
            go_on()
        except BaseException:  # trio.Cancelled, a BaseException
            return True
        return False

    return stopped


def _refuse_unresolved(run: RunState, spec_id: str, path: Path) -> None:
    """Raise ``WorktreeError`` when the spec's worktree has a merge in progress with
    conflicts left: committing its work as it is would commit the conflict markers."""
    conflicted = git_worktree.unmerged_files(path)
    if conflicted:
        more = f" (and {len(conflicted) - 3} more)" if len(conflicted) > 3 else ""
        raise worktree.WorktreeError(
            f"{path} has conflicts not resolved yet, in {', '.join(conflicted[:3])}{more}: "
            f"resolve them and commit there, then `dag retry {run.run_id} {spec_id}`"
        )


def _reopenable(path: Path, branch: str, book: Bookkeeping) -> bool:
    """Whether an earlier attempt left something to go on with: its branch, or its
    worktree (``reopen_worktree`` then says what is wrong)."""
    return path.exists() or branch in book.branches


def _start_point(run: RunState, dag: Dag, spec_id: str, book: Bookkeeping) -> str:
    """Where a new spec's branch starts: the base commit, or for a spec with dependencies
    the integration branch's tip, which holds their merged work. A completed dependency
    not joined by this drive (completed by an earlier driver) joins first, if its branch is
    there; only then is ``book.joining`` taken. Call with ``book.worktrees`` held (it takes
    ``book.joining``, never the other way round).

    Without a join to make, the tip is read unlocked: ``book.integration`` is set before a
    spec is added to ``book.joined``, so once every dependency is in it, any tip read has
    their work, and a spec's worktree does not wait for another spec's join."""
    dependencies = dag.deps[spec_id]
    if not dependencies:
        return run.base_commit
    if any(dep not in book.joined for dep in dependencies):
        with book.joining:
            for dep in dependencies:
                joined = run.spec(dep)
                if dep not in book.joined and joined.branch and joined.branch in book.branches:
                    _join(run, book, dep, joined.branch, _message(run, dag, dep))
                    book.joined.add(dep)
    return book.integration or run.base_commit


def _message(run: RunState, dag: Dag, spec_id: str) -> str:
    """The join's (and so the base branch's) merge commit message for ``spec_id``."""
    from dagspec.merge_chain import merge_message

    branch = run.spec(spec_id).branch or branch_name(run.run_id, spec_id)
    return merge_message(run.run_id, spec_id, branch, dag.features[spec_id].description)


def _spec_dir_to_continue(
    run: RunState,
    spec: SpecState,
    path: Path,
    last_stage: str | None,
    book: Bookkeeping,
    *,
    afresh: bool,
) -> str | None:
    """The name of the spec's directory if it has a spec.yaml: the one recorded, else the
    feature's own ``specs/<id>/``, else, in a worktree an earlier attempt left (not
    ``afresh``), one that attempt made but did not get to record. One that specify left
    without a spec.yaml, or whose last attempt ended during specify (its spec.yaml is not
    to be trusted), is removed (contract §1.6), so that specify starts clean.

    A worktree made afresh holds its start commit and nothing else: a directory there that
    is not recorded is another spec's, joined into the integration branch this spec starts
    from before its own completion was recorded. Taken as this spec's own, it was
    "already complete" and the feature was never built."""
    name = _dir_name(spec.spec_dir)
    if name is None and (path / "specs" / spec.id / "spec.yaml").is_file():
        name = spec.id
    if name is None and not afresh:
        base_dirs = book.base_dirs(path, run.base_commit)
        name = spec_dirs.new_spec_dir(
            path, run.base_commit, _known_dirs(run, book, spec.id), base_dirs
        )
    if name is None:
        return None
    unfinished = last_stage == "specify" or not (path / "specs" / name / "spec.yaml").is_file()
    if unfinished and spec_dirs.discard_spec_dir(path, name):
        return None
    return name if (path / "specs" / name / "spec.yaml").is_file() else None


def restore_tasks(tasks: Path, kept: Path) -> bool:
    """Put back the last whole ``tasks.yaml`` dagspec read during the last attempt when the
    one in the worktree cannot be read whole: autospec rewrites it in place, so a kill
    during implement can leave it torn, and the resumed implement would fail on it, or
    take a file cut at a line end for the whole list. The tasks already done stay done.

    Returns whether ``tasks.yaml`` is whole now; False (torn, and no whole copy was ever
    read) means the tasks stage must run again."""
    try:
        torn = autospec.parse_tasks(tasks.read_text(encoding="utf-8", errors="replace")) is None
        if torn and kept.is_file():
            tasks.write_bytes(kept.read_bytes())
            return True
    except OSError:
        return False
    return not torn


def agent_env(
    paths: RunPaths, spec_id: str, call: autospec.Invocation, identity: Mapping[str, str]
) -> dict[str, str]:
    """The agent's environment: no inherited repository locators (``git_env.agent_env``), its
    own autospec state directory, no prompts, who commits in the checkout (``identity``: an
    ``includeIf "onbranch:main"`` identity would not apply on the spec's branch), and
    ``SPECIFY_FEATURE`` only when resuming (contract §1.4)."""
    state_dir = paths.autospec_state_dir(spec_id)
    state_dir.mkdir(parents=True, exist_ok=True)
    env = git_env.agent_env(
        {
            "AUTOSPEC_STATE_DIR": str(state_dir),
            "AUTOSPEC_SKIP_PERMISSIONS_NOTICE": "1",
            "AUTOSPEC_YES": "1",
            **identity,
            **call.env,
        }
    )
    if "SPECIFY_FEATURE" not in call.env:
        env.pop("SPECIFY_FEATURE", None)
    return env


def collect(
    run: RunState, spec: SpecState, path: Path, seen: str | None, book: Bookkeeping
) -> tuple[str | None, bool]:
    """After exit 0: the spec's directory name (``seen`` in the output, else the one specify
    made here), with all the work in the worktree committed on the spec's branch; and
    whether a commit was made just now (``worktree.Collected``)."""
    name = seen
    if name is None or not (path / "specs" / name).is_dir():
        base_dirs = book.base_dirs(path, run.base_commit)
        known = _known_dirs(run, book, spec.id)
        name = spec_dirs.new_spec_dir(path, run.base_commit, known, base_dirs)
    message = f"dag({run.run_id}): {spec.id}"
    branch = spec.branch or ""
    done = worktree.collect_work(
        Path(run.repo),
        path,
        branch=branch,
        message=message,
        sign=book.sign,
        identity=book.identity,
        again=f"dag retry {run.run_id} {spec.id}",
    )
    return name, done.committed


def highest_number(run: RunState) -> int:
    """The highest spec number recorded or found in the run's worktrees: an earlier driver
    may have been killed after a specify made its directory but before recording it, and
    that number is taken as surely as a recorded one."""
    names = [s.spec_dir for s in run.specs if s.spec_dir]
    for specs in (Path(s.worktree) / "specs" for s in run.specs if s.worktree):
        names += [p.name for p in specs.iterdir()] if specs.is_dir() else []
    return max(map(spec_dirs.number_of, names), default=0)


def _known_dirs(run: RunState, book: Bookkeeping, spec_id: str) -> list[str]:
    """The spec directories specs other than ``spec_id`` own: recorded in ``run``, or
    collected by this drive (``Bookkeeping.collected``), whose record may not be saved yet
    while its join is."""
    owners = {s.id: name for s in run.specs if (name := _dir_name(s.spec_dir))}
    owners.update(book.collected)
    return [name for owner, name in owners.items() if owner != spec_id]


def _dir_name(spec_dir: str | None) -> str | None:
    """``specs/004-auth`` -> ``004-auth``."""
    return spec_dir.removeprefix("specs/") if spec_dir else None
