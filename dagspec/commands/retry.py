"""``dag retry``: re-run failed specs of a run, then whatever was blocked behind them; or
start specs waiting for a usage limit now (``dagspec.waits``: when a live driver holds the
run, the request goes to it)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dagspec import checkout_move, driving, faults, lifecycle, relocate, state, waits
from dagspec.errors import DagspecError
from dagspec.executable import autospec_version, find_run_autospec
from dagspec.lifecycle import RunState, SpecStatus
from dagspec.programs import check_notify_flag
from dagspec.words import no_such_spec
from dagspec.workspace import RunPaths, check_run_id


def retry(
    repo: Path,
    run_id: str,
    spec_ids: Sequence[str],
    *,
    overrides: Mapping[str, Any],
    color: bool,
    live: bool = False,
) -> int:
    """Reset the failed (or waiting) specs ``spec_ids`` of run ``run_id`` and continue the
    run; waiting specs of a run a live driver holds are handed to that driver instead."""
    paths = RunPaths(repo, check_run_id(run_id))
    recorded = state.load(paths)  # an unknown run is refused before its lock file is made
    check_notify_flag(overrides.get("notify"), repo=repo)
    ids = [s.id for s in recorded.specs]
    for unknown in (i for i in spec_ids if i not in ids):  # before "being driven by" a driver
        raise DagspecError(no_such_spec(run_id, unknown, ids))
    if (handed := _hand_to_driver(paths, recorded, spec_ids)) is not None:
        return handed
    checkout_move.finish_interrupted(repo)
    with state.run_lock(paths):
        recorded = state.ended_at_last_write(relocate.arrive(paths, state.load(paths)), paths)
        check_retryable(state.settled(recorded), spec_ids)  # a killed driver's: interrupted
        again = f"dag retry {run_id} {' '.join(spec_ids)}"
        driving.check_branches(repo, recorded, spec_ids, again)
        dag = driving.recorded_dag(repo, paths, recorded)
        options = attrs.evolve(recorded.options, **overrides)
        executable = find_run_autospec(
            overrides.get("autospec"),
            recorded.options.autospec,
            run_id=run_id,
            again=again,
            used=recorded.autospec,
        )
        initial = lifecycle.prepare_retry(recorded, spec_ids, options)
        # the autospec that runs now decides how it is called (`autospec.spec_flag_works`)
        version = autospec_version(executable, cwd=repo)
        initial = attrs.evolve(initial, autospec_version=version, autospec=executable)
        faults.say(f"retrying {', '.join(spec_ids)} of run {run_id}\n")
        return driving.execute(
            repo, paths, initial, dag, executable=executable, color=color, live=live
        )


ANSWER = 5.0  # seconds a live driver gets to take a request before `retry` says it has not


def _hand_to_driver(paths: RunPaths, recorded: RunState, spec_ids: Sequence[str]) -> int | None:
    """When every named spec is waiting and a live driver holds the run: ask it to start
    them now (``waits.request``), say what happened, and return the exit code; else None
    (no driver: ``retry`` drives the run itself, after its usual checks)."""
    known = {s.id: s for s in recorded.specs}
    if not spec_ids or any(
        i not in known or known[i].status is not SpecStatus.WAITING for i in spec_ids
    ):
        return None
    driver = waits.lock_holder(paths)
    if driver is None:
        return None
    waits.request(paths, spec_ids, driver)
    names, run_id = ", ".join(spec_ids), recorded.run_id
    deadline = time.monotonic() + ANSWER
    answers = dict.fromkeys(spec_ids, None)
    while None in answers.values():  # the driver answers each request it acted on
        answers = {i: waits.answered(paths, i) for i in spec_ids}
        if time.monotonic() > deadline or waits.lock_holder(paths) != driver:
            break
        time.sleep(0.05)
    waits.withdraw(paths, spec_ids)  # what it has not taken stays untaken
    answers = {i: waits.answered(paths, i, remove=True) for i in spec_ids}
    them = "it" if len(spec_ids) == 1 else "them"
    if all(a == waits.STARTED for a in answers.values()):
        faults.say(
            f"ended the wait of {names} of run {run_id}: its driver (process {driver}) "
            f"restarts {them} at the recorded stage as soon as a slot is free\n"
        )
        return 0
    started = [i for i, a in answers.items() if a == waits.STARTED]
    done = f" (it started {', '.join(started)})" if started else ""
    rest = " ".join(i for i in spec_ids if i not in started)
    if waits.STOPPING in answers.values():
        raise DagspecError(
            f"run '{run_id}' is stopping: its driver (process {driver}) was asked to stop and "
            f"starts nothing now{done}; once it has ended, `dag retry {run_id} {rest}` starts "
            f"{them} (or `dag resume {run_id}` waits out the reset)"
        )
    if waits.lock_holder(paths) == driver:
        raise DagspecError(
            f"run '{run_id}' is driven by process {driver}, which has not answered the request "
            f"to start {names} now in {ANSWER:g} s{done}; `dag retry {run_id} {rest}` again, "
            f"or stop it (kill {driver}) and retry then"
        )
    if started:
        raise DagspecError(
            f"run '{run_id}': its driver (process {driver}) started {', '.join(started)} and "
            f"ended; `dag retry {run_id} {rest}` starts the rest"
        )
    return None  # the driver ended meanwhile, taking nothing: retry drives the run itself


def check_retryable(run: RunState, spec_ids: Sequence[str]) -> None:
    """Raise ``DagspecError`` for a named spec that the run lacks or that has neither
    failed nor waits for a usage limit, saying what to do instead."""
    ids = [s.id for s in run.specs]
    for spec_id in spec_ids:
        if spec_id not in ids:
            raise DagspecError(no_such_spec(run.run_id, spec_id, ids))
        spec = run.spec(spec_id)
        if spec.status in (SpecStatus.FAILED, SpecStatus.WAITING):
            continue
        hint = {
            SpecStatus.BLOCKED: f"it waits for {', '.join(spec.blocked_by)}: retry that instead",
            SpecStatus.INTERRUPTED: f"`dag resume {run.run_id}` continues it",
            SpecStatus.PENDING: f"`dag resume {run.run_id}` runs it",
            SpecStatus.COMPLETED: "its work is done",
            SpecStatus.RUNNING: "it is running",
        }[spec.status]
        raise DagspecError(
            f"spec '{spec_id}' is {spec.status.value}, not failed; only failed specs (and "
            f"specs waiting for a usage limit) are retried: {hint}"
        )
