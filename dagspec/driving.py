"""Driving a run, as ``run``, ``resume``, ``retry``, ``merge`` and ``demo`` share it.

``start`` records a new run and executes it; ``execute`` drives a recorded run with the
scheduler, then merges its completed specs through the same function ``dag merge`` uses
(``merge_and_report``) and prints the summary.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dagspec import faults, notify, render, state
from dagspec import workspace as places
from dagspec.checks import Planned
from dagspec.console import dag_command
from dagspec.dagfile import Dag, check_bytes, load_dag
from dagspec.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    DagspecError,
    Interrupted,
    SigningStopped,
    WaitStopped,
    as_typed,
    print_error,
    print_warning,
)
from dagspec.lifecycle import RunOptions, RunState, RunStatus, SpecState, SpecStatus
from dagspec.words import counted
from dagspec.workspace import RunPaths

if TYPE_CHECKING:
    from dagspec import left_behind
    from dagspec.merge_report import MergeReport


def start(
    path: Path, planned: Planned, *, color: bool, live: bool = False, hint: str | None = None
) -> int:
    """Record a new run of ``planned`` (its DAG read from ``path``, its run id set) and
    execute it; the exit code. Its base branch and autospec are what preflight found
    (``Planned.base``, ``Planned.autospec``). Raises ``DagspecError`` when they or the run
    id cannot be used."""
    repo, dag, options, run_id = planned.repo, planned.dag, planned.options, planned.run_id
    if dag is None or run_id is None:
        raise ValueError("a run is started with its DAG and run id")
    base_branch, base_commit = planned.base()
    executable, version = planned.autospec()
    paths = RunPaths(repo, run_id)
    recorded = recorded_specs(repo, dag)
    with state.run_lock(paths):
        if paths.state_file.exists():
            raise DagspecError(f"run '{run_id}' exists already: continue it with `dag resume`")
        try:
            _copy_dag(path, paths.dag_copy)
            initial = RunState(
                format=state.FORMAT,
                run_id=run_id,
                dag_file=_relative(path, repo),
                dag_name=dag.name,
                repo=str(repo),
                status=RunStatus.RUNNING,
                base_branch=base_branch,
                base_commit=base_commit,
                started_at=state.utcnow(),
                driver_pid=os.getpid(),
                options=options,
                specs=_new_specs(dag, recorded),
                autospec_version=version,
                autospec=executable,
            )
            state.save(initial, paths.state_file)
        except BaseException:  # a full disk, a Ctrl-C: nothing of a run never recorded stays
            _never_recorded(paths)
            raise
        faults.say(f"run {run_id}: {counted(len(initial.specs), 'spec')}, {how(options)}\n")
        faults.say("".join(line + "\n" for line in continued_lines(recorded)))
        return execute(
            repo, paths, initial, dag, executable=executable, color=color, live=live, hint=hint
        )


def _copy_dag(source: Path, copy: Path) -> None:
    """The run's copy of its DAG file, the file named when it cannot be written."""
    try:
        copy.write_bytes(source.read_bytes())
    except OSError as exc:
        if exc.filename is None:  # a write cut short (a full disk, ``ulimit -f``)
            raise OSError(exc.errno, exc.strerror, str(copy)) from exc
        raise


def _never_recorded(paths: RunPaths) -> None:
    """What the start of a run whose state was never saved left: its directory, with the
    DAG's copy and the lock's file (the lock stays held on the directory until it closes)."""
    if paths.state_file.exists():
        return
    for made in (paths.dag_copy, paths.lock_file):
        with contextlib.suppress(OSError):
            made.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        paths.run_dir.rmdir()


def _new_specs(dag: Dag, recorded: dict[str, Recorded]) -> tuple[SpecState, ...]:
    return tuple(
        SpecState(
            id=feature.id,
            layer=feature.layer,
            depends_on=dag.deps[feature.id],
            spec_dir=recorded[feature.id].spec_dir if feature.id in recorded else None,
        )
        for feature in dag.features.values()
    )


class Recorded(NamedTuple):
    """The spec directory an earlier run completed for a feature, and that run's id."""

    spec_dir: str
    run_id: str


_CONTINUED_ONE_BY_ONE = 3  # more specs going on than this are said in one line


def continued_lines(recorded: dict[str, Recorded]) -> list[str]:
    """What a new run says at its start of the specs that go on with a spec directory an
    earlier run completed: autospec runs their implement stage again, which an AI agent
    is paid for. One line a spec, or one line counting them when there are many."""
    if len(recorded) <= _CONTINUED_ONE_BY_ONE:
        return [
            f"{spec_id} goes on with {r.spec_dir}, which run {r.run_id} completed: "
            "autospec runs its implement stage again"
            for spec_id, r in recorded.items()
        ]
    runs = sorted({r.run_id for r in recorded.values()})
    which = f"run {runs[0]}" if len(runs) == 1 else "runs " + ", ".join(runs)
    return [
        f"{counted(len(recorded), 'spec')} go on with the spec directories {which} completed "
        f"({', '.join(recorded)}): autospec runs their implement stage again"
    ]


def recorded_spec_dirs(repo: Path, dag: Dag) -> dict[str, str]:
    """The spec directory of each feature in ``recorded_specs``."""
    return {spec_id: r.spec_dir for spec_id, r in recorded_specs(repo, dag).items()}


def recorded_specs(repo: Path, dag: Dag) -> dict[str, Recorded]:
    """The spec directory an earlier run recorded for each feature of ``dag`` it completed
    as the same feature (same id and same description, as its copy of the DAG file says),
    newest run first, so running a DAG again continues that directory instead of
    specifying the feature a second time. A feature with a new description is new work.
    Unreadable state files and DAG copies are passed over.

    Cheap with hundreds of earlier runs (issue 16): runs are read newest first and the
    search ends once every feature has its record; a DAG copy is parsed once per distinct
    content (a DAG run again and again leaves identical copies)."""
    found: dict[str, Recorded] = {}
    parsed: dict[bytes, dict[str, str | None] | None] = {}
    readable, _ = state.list_runs(repo)
    for run in readable:  # newest first, so the newest run's record wins
        done = {
            s.id: s.spec_dir
            for s in run.specs
            if s.status is SpecStatus.COMPLETED
            and s.spec_dir
            and s.id in dag.features
            and s.id not in found
        }
        if not done:
            continue
        then = _descriptions(RunPaths(repo, run.run_id).dag_copy, parsed)
        if then is None:
            continue
        for spec_id, spec_dir in done.items():
            if spec_id in then and then[spec_id] == dag.features[spec_id].description:
                found[spec_id] = Recorded(spec_dir, run.run_id)
        if len(found) == len(dag.features):
            break
    return found


def _descriptions(
    copy: Path, parsed: dict[bytes, dict[str, str | None] | None]
) -> dict[str, str | None] | None:
    """Each feature's description in a run's copy of its DAG file (None: unreadable or
    invalid), parsed once per distinct content (``parsed`` keeps them)."""
    try:
        raw = copy.read_bytes()
    except OSError:
        return None
    if raw not in parsed:
        checked = check_bytes(raw, str(copy), copy.stem)
        valid = checked.dag is not None and not checked.problems
        features = checked.dag.features if checked.dag is not None and valid else None
        parsed[raw] = (
            {spec_id: f.description for spec_id, f in features.items()}
            if features is not None
            else None
        )
    return parsed[raw]


def _relative(path: Path, repo: Path) -> str:
    absolute = places.resolved(path)
    return str(absolute.relative_to(repo)) if absolute.is_relative_to(repo) else str(absolute)


def how(options: RunOptions) -> str:
    """``one at a time`` or ``in parallel, at most N at once``."""
    if not options.parallel:
        return "one at a time"
    return f"in parallel, at most {options.max_parallel} at once"


def spec_timeouts(dag: Dag, options: RunOptions) -> dict[str, float | None]:
    """Each spec's time limit in seconds: its feature's ``timeout``, else ``--timeout``,
    else ``execution.timeout``."""
    return {
        f.id: f.timeout or options.timeout or dag.execution.timeout for f in dag.features.values()
    }


def check_branches(repo: Path, run: RunState, spec_ids: Iterable[str], again: str) -> None:
    """Refuse to take up a spec whose worktree someone left in the middle of an operation
    of git's (a rebase: HEAD detached, so the agent's commits would be on no branch; but a
    merge is how a join conflict is resolved, README "Merging", and the spec's commit of a
    spec whose agent is done concludes it), or
    whose branch points at a commit the repository no longer has (``git_refs.lost_commit``:
    every git command in its worktree fails there, so each attempt would fail at once, for
    ever; the files of its worktree are all that is left of its work, and ``dag cleanup
    --force`` removes them and the branch), or whose commits no branch holds
    (``dagspec.adrift``: a detached HEAD with commits of its own, the branch deleted under
    its worktree), which its agent would work beside, or whose worktree is off its branch
    (``dagspec.off_branch``), where its work could not be put on the branch."""
    from dagspec import adrift, checkout_safety, git_refs, off_branch  # runs that resume specs

    for spec_id in spec_ids:
        spec = run.spec(spec_id)
        done = spec.agent_done  # only its work is committed and joined: no agent runs
        worktree = None if spec.worktree is None else Path(spec.worktree)
        busy = None if worktree is None else checkout_safety.operation_in(worktree, merge_ok=done)
        if busy is not None:
            inside = "its work would be committed" if done else "its agent would work"
            raise DagspecError(
                f"the worktree {spec.worktree} of spec {spec_id} of run {run.run_id} is in "
                f"the middle of {busy}, and {inside} inside it: end it, then `{again}`"
            )
        branch = spec.branch or places.branch_name(run.run_id, spec_id)
        if worktree is not None:  # commits on no branch: never under an agent's feet
            adrift.refuse_taking_up(worktree, repo, spec_id, run.run_id, (branch, again))
            off_branch.refuse_off_branch(repo, worktree, spec_id, run.run_id, (branch, again))
        if git_refs.rev_parse(repo, f"refs/heads/{branch}") is not None:
            continue
        lost = git_refs.lost_commit(repo, f"refs/heads/{branch}")
        if lost is None and worktree is not None and adrift.on_branch(worktree, branch, repo):
            gone = adrift.branch_deleted(worktree, branch, spec_id, run.run_id, repo)  # unborn
            raise DagspecError(f"{gone}, then `{again}`")
        if lost is None:
            continue
        files = f", but for the files in {spec.worktree}" if spec.worktree else ""
        raise DagspecError(
            f"branch {branch} of spec {spec_id} of run {run.run_id} points at commit {lost[:12]}, "
            f"which the repository no longer has (pruned by `git gc` after a reset?): the "
            f"spec's work is lost{files}; fetch that commit back from a clone that has it, "
            f"or `dag cleanup {run.run_id} --force` (it removes the branch and worktree), "
            f"then `{again}` starts the spec afresh"
        )


_TAKEN_UP = (SpecStatus.FAILED, SpecStatus.INTERRUPTED, SpecStatus.BLOCKED)


def lost_branches(repo: Path, run: RunState) -> dict[str, str]:
    """The specs ``resume`` or ``retry`` would take up whose branch points at a commit the
    repository no longer has (``git_refs.lost_commit``), with that commit: both would refuse
    them (``check_branches``), so no hint may send the user there. No git process for a
    run with no such spec to take up."""
    from dagspec import git_refs  # only for runs with specs to take up

    lost = {}
    for spec in run.specs:
        if spec.status in _TAKEN_UP and (spec.branch or spec.worktree):
            branch = spec.branch or places.branch_name(run.run_id, spec.id)
            if (commit := git_refs.lost_commit(repo, f"refs/heads/{branch}")) is not None:
                lost[spec.id] = commit
    return lost


def recorded_dag(repo: Path, paths: RunPaths, recorded: RunState) -> Dag:
    """The DAG as it was when the run started; says so when the file has changed since."""
    dag = load_dag(paths.dag_copy)
    original = repo / recorded.dag_file
    try:
        changed = original.read_bytes() != paths.dag_copy.read_bytes()
    except OSError:
        changed = True
    if changed:
        print(
            as_typed(
                f"note: {recorded.dag_file} has changed since run {recorded.run_id} started; "
                "continuing the DAG as it was then (`dag resume "
                f"{recorded.run_id} --dag {recorded.dag_file}` takes the changes, a new "
                "`dag run` starts over)"
            ),
            file=sys.stderr,
        )
    return dag


def execute(
    repo: Path,
    paths: RunPaths,
    initial: RunState,
    dag: Dag,
    *,
    executable: str,
    color: bool,
    live: bool = False,
    hint: str | None = None,
) -> int:
    """Drive the run, then merge and clean up as its options say; print the summary and
    return the exit code (0 completed and merged, 130 stopped by a signal, else 1)."""
    import trio

    from dagspec import attempt, board, estimates, git_commit, ports, progress, scheduler
    from dagspec import left_behind as behind

    options = initial.options
    settings = scheduler.Settings(
        paths=paths,
        dag=dag,
        max_parallel=options.max_parallel if options.parallel else 1,
        fail_fast=options.fail_fast,
        timeouts=spec_timeouts(dag, options),
        stall_timeout=options.stall_timeout or dag.execution.stall_timeout,
        history=estimates.load_history(repo),
    )
    root = places.worktree_root(repo, options.worktree_root)
    # a worktree still waiting for its turn when the drive stops is not made
    go_on = trio.from_thread.check_cancelled
    workspace = ports.Threaded(attempt.GitWorkspace(paths, dag, executable, root, go_on=go_on))
    live_report = progress.reporter(live=live, color=color, history=settings.history)
    report = faults.Quiet(live_report)  # not a lifeline
    # notices of failed specs and of the run's end (dagspec.notify)
    notifier = notify.Notifier(
        options.notify or dag.execution.notify, cwd=repo, log=paths.run_dir / "notify.log"
    )
    reporter = notifier.wrap(report)
    signalled: list[int] = []  # this drive was stopped by SIGINT/SIGTERM/SIGHUP: exit 130

    def stopping(run: RunState, grace: float, agents: int) -> None:
        signalled.append(agents)
        signs = False  # whether the work being committed waits for a signer
        with contextlib.suppress(DagspecError):  # the repository gone: it is not signed
            signs = board.committing(run) > 0 and git_commit.signs_commits(repo)
        report.stopping(run, grace, agents, signs=signs)

    async def drive_shown() -> RunState:
        """The drive, with the board's heartbeat beside it. A fault of the run itself
        (``faults.RunFault``: its state cannot be saved) comes out of the nursery as itself,
        not wrapped in an exception group, so the command says it and exits 1."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(progress.heartbeat, report)
                final = await scheduler.drive(
                    initial, settings, reporter, workspace=workspace, on_stopping=stopping
                )
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            ours = [e for e in faults.leaves(group) if isinstance(e, DagspecError)]
            if not ours:
                raise
            raise ours[0] from None
        return final

    try:
        final = trio.run(drive_shown)
    finally:
        report.close()
    # A run can end interrupted without a signal (a spec `retry` left interrupted): then 1,
    # and its completed specs are merged, as they are when a spec failed.
    code = EXIT_OK if final.status is RunStatus.COMPLETED else EXIT_FAILED
    code = EXIT_INTERRUPTED if signalled else code
    left = behind.Left()  # what the merge's cleanup left: nothing when none ran
    unmerged = any(s.status is SpecStatus.COMPLETED and not s.merged for s in final.specs)
    # merged specs' worktrees that a driver killed during their removal left (issue 11)
    kept = not options.keep_worktrees and any(s.merged and s.worktree for s in final.specs)
    if options.merge and not signalled and (unmerged or kept):
        try:
            final, merged, left = merge_and_report(
                paths,
                final,
                dry_run=False,
                cleanup=not options.keep_worktrees,
                quiet_cleanup=True,
                dag=dag,
            )
            code = code or merged
        except KeyboardInterrupt as exc:  # a signal during the merge, which it let finish whole
            if isinstance(exc, Interrupted) and exc.error:
                exc.say()  # what was not merged, and how to merge it
            final, code = state.load(paths), EXIT_INTERRUPTED  # still reported and told
    _end_unattended(final, notifier)
    shown = render.as_typed_run(behind.shown(final, left))  # `dag ...` as typed; what is left
    lost = lost_branches(repo, final) if final.status is not RunStatus.RUNNING else {}
    said = render.summary(
        shown, color=color, dag=hint or dag_command(), lost=lost, branches_left=bool(left.branches)
    )
    faults.say(said)
    return code


def _end_unattended(final: RunState, notifier: notify.Notifier) -> None:
    """The report card of the run, its run-finished notice, and a bell on a terminal after
    a run of over a minute."""
    from dagspec import report as report_card
    from dagspec.usage import usage_of

    card = report_card.card(render.as_typed_run(final), now=state.utcnow(), usage=usage_of(final))
    faults.say(report_card.render_text(card, width=render.terminal_width()))
    for warning in notifier.finish(final):
        print_warning(warning)
    if notify.wants_bell(final, terminal=sys.stdout.isatty()):
        print("\a", end="", flush=True)


def merge_and_report(
    paths: RunPaths,
    run: RunState,
    *,
    dry_run: bool,
    cleanup: bool,
    quiet_cleanup: bool = False,
    onto_current: bool = False,
    dag: Dag | None = None,
) -> left_behind.Merged:
    """Merge (``dagspec.merge``), save, print the report, remove merged specs' worktrees if
    ``cleanup`` (saying which, unless ``quiet_cleanup``: then only those kept for work git
    status does not show, ``dagspec.unseen_work``); the new state and the exit code
    (1 when a completed spec is left off). ``onto_current`` replays the specs onto a
    rewritten base branch (``dagspec.replay``).

    The caller holds the run's lock (unless ``dry_run``, which writes nothing): ``dag
    merge`` and the end of ``run``, ``resume`` and ``retry`` all come here. Also returns
    what the cleanup left (``left_behind``): a branch moved on after its merge (then exit 1:
    its new commit is not on the base branch), the branches git did not delete.
    """
    from dagspec import git_commit, left_behind, merge_report, removal
    from dagspec.undeleted import together

    dag = dag or load_dag(paths.dag_copy)
    signs = False  # whether a signer may keep the merge waiting, said at a first Ctrl-C
    with contextlib.suppress(DagspecError):  # the repository gone: it is not signed
        signs = git_commit.signs_commits(paths.repo)
    told = partial(_merge_signalled, signs=signs)
    done = False
    cleaned = None
    try:
        # merged, removed and recorded whole; a second signal stops a signer it waits for
        with git_commit.stoppable_signers(), faults.signals_deferred(told):
            merged = _merged(paths, run, dag, dry_run=dry_run, onto_current=onto_current)
            new, report = merged
            if not dry_run:
                _record_merged(paths, new, report)
            faults.say(merge_report.render_report(report, width=render.terminal_width()))
            undeleted = report.undeleted
            if cleanup and not dry_run:
                cleaned = removal.remove_merged_worktrees(paths.repo, new)
                state.save(cleaned.run, paths.state_file)
                faults.say(removal.render_cleanup(new, cleaned, only_unseen=quiet_cleanup))
                new, undeleted = cleaned.run, together(undeleted, cleaned.undeleted)
            if undeleted is not None:  # cleanup, after the merge was recorded
                print_error(undeleted.line(run.run_id))
            done = True
    except KeyboardInterrupt:
        if not done:
            raise
        # a signal held until the merge was done: a bare "interrupted" just after
        # "fast-forwarded" read as if the merge had been cut short
        raise Interrupted(
            f"stopped at the Ctrl-C once the merge of run {run.run_id} was done, as it said above"
        ) from None
    left = left_behind.of_cleanup(new, None if cleaned is None else cleaned.moved, undeleted)
    code = merge_report.merge_exit_code(report)
    return left_behind.Merged(
        new, EXIT_FAILED if undeleted is not None or left.moved else code, left
    )


def _record_merged(paths: RunPaths, run: RunState, report: MergeReport) -> None:
    """Save the state the merge left; when there is no room for it, and the merge moved the
    base branch (or parked its result), say what it did first: that is done all the same."""
    from dagspec import merge_report

    try:
        state.save(run, paths.state_file)
    except OSError as exc:
        said = merge_report.unrecorded(report, exc)
        if said is None:
            raise
        faults.say(merge_report.render_report(report, width=render.terminal_width()))
        raise DagspecError(said) from None


def _merge_signalled(count: int, *, signs: bool) -> None:
    """A signal during the merge (``faults.signals_deferred``): the first is told (on the
    descriptor: this is a signal handler), the second stops the signers it waits for. A
    wait for another run's update of the checkout, before anything is moved, ends at the
    first (``lock_waits.stop_waiting``)."""
    from dagspec import git_commit, lock_waits

    if count == 1 and lock_waits.stop_waiting():
        return  # ``_merged`` says it
    if count == 1:
        told = _MERGE_GOES_ON + (_SIGNER if signs else "") + "\n"
        with contextlib.suppress(OSError):
            os.write(2, told.encode())
    elif count == 2:
        git_commit.stop_signers()


_MERGE_GOES_ON = "dag: stopping once the merge is done, as it is never cut in half"
_SIGNER = " (Ctrl-C again to stop a signer it waits for)"


def _merged(
    paths: RunPaths, run: RunState, dag: Dag, *, dry_run: bool, onto_current: bool
) -> tuple[RunState, MergeReport]:
    """``merge.merge_run``, which signers may keep waiting (``git_commit.signing_wait`` a
    merge commit): after a second signal stopped one, nothing is merged, and the signals
    are an interrupt that says so (``Interrupted``)."""
    from dagspec import merge, onto_advice

    again = onto_advice.merge_command(run.run_id, onto=onto_current)
    try:
        return merge.merge_run(paths.repo, run, dag, dry_run=dry_run, onto_current=onto_current)
    except WaitStopped as stopped:
        raise Interrupted(
            f"the merge of run {run.run_id} {stopped} at a Ctrl-C: nothing was merged; "
            f"`{again}` merges it",
            error=True,
        ) from None
    except SigningStopped:
        raise Interrupted(
            f"the merge of run {run.run_id} stopped at a second Ctrl-C while a signer kept it "
            f"waiting: nothing was merged; `{again}` merges it",
            error=True,
        ) from None
