"""``dag resume`` and ``dag retry``: continuing a run where each spec left off (README,
How a run works)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state
from tests.conftest import git
from tests.engine_support import Gatekeeper, Project, branches, dag_text, pid_alive, start_dag
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

RunCli = Callable[..., int]


@pytest.fixture
def env_log(project: Project, tmp_path: Path) -> Path:
    """An ``autospec`` that records SPECIFY_FEATURE, then is the fake (``--autospec`` it)."""
    record = tmp_path / "env.jsonl"
    wrapper = tmp_path / "bin" / "autospec"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = --version ] || '  # dagspec's preflight asks for the version
        f"printf '%s\\n' \"${{SPECIFY_FEATURE-<unset>}}\" >> '{record}'\n"
        f"exec '{project.fake.path}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def specify_features(wrapper: Path) -> list[str]:
    record = wrapper.parent.parent / "env.jsonl"
    return record.read_text().splitlines() if record.exists() else []


@pytest.mark.parametrize(
    ("stage", "flag"),
    [("specify", "-spti"), ("plan", "-pti"), ("tasks", "-ti"), ("implement", "-i")],
)
def test_a_failed_spec_resumes_at_its_first_missing_artifact(
    project: Project, run_cli: RunCli, env_log: Path, stage: str, flag: str
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": stage}])
    dag = project.write_dag(dag_text("a", ("b", ["a"])))
    assert run_cli("run", dag, "--run-id", "r", "--autospec", env_log) == 1
    assert project.statuses() == {"a": "failed", "b": "blocked"}
    project.fake.control([])
    assert run_cli("resume", "r") == 0
    assert project.statuses() == {"a": "completed", "b": "completed"}
    spec_dir = Path(project.state().spec("a").spec_dir or "").name
    second = project.starts("Build a")[1:] or [project.starts()[1]]
    if flag == "-spti":
        assert second[0]["argv"] == ["run", "-spti", "-y", "Build a"]
        assert specify_features(env_log)[:2] == ["<unset>", "<unset>"]
    else:
        assert second[0]["argv"] == ["run", flag, "--spec", spec_dir, "-y"]
        assert specify_features(env_log)[:2] == ["<unset>", spec_dir]
    assert project.fake.events("prompt_dir_mismatch") == []
    assert sorted(p.name for p in (project.repo / "specs").iterdir())[0] == spec_dir


def test_resume_after_sigint_runs_no_finished_stage_again(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.fake.control([{"match": "^Build b$", "HANG_AT": "implement"}])
    project.write_dag(dag_text("a", "b", ("c", ["b"])))
    driver = start_dag(project.repo, "run", "dag.yaml", "--parallel", "--run-id", "r")
    wait_for(lambda: project.fake.events("hang"), timeout=20, what="b hangs")
    wait_for(lambda: project.statuses()["a"] == "completed", timeout=20, what="a completes")
    driver.send_signal(signal.SIGINT)
    driver.communicate(timeout=30)
    assert driver.returncode == 130
    assert project.statuses() == {"a": "completed", "b": "interrupted", "c": "pending"}
    project.fake.control([])
    assert run_cli("resume", "r") == 0
    # what the report said at the stop, not "2 pending" (every spec resumed is pending)
    assert "resuming run r: 2 to run (1 interrupted, 1 pending), 1 completed\n" in (
        capsys.readouterr().out
    )
    assert project.statuses() == dict.fromkeys("abc", "completed")
    assert project.stages("a") == ["specify", "plan", "tasks", "implement"]
    assert project.stages("b") == ["specify", "plan", "tasks", "implement", "implement"]
    assert project.stages("c") == ["specify", "plan", "tasks", "implement"]


def _driver_killed_at_plan(project: Project) -> dict[str, object]:
    """Run r of one spec a whose agent hangs at plan, SIGKILL the driver once plan is
    saved; the hanging agent's record (it outlives the driver: its own session)."""
    project.fake.control([{"match": "^Build a$", "HANG_AT": "plan"}])
    project.write_dag(dag_text("a"))
    driver = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r")
    hang = wait_for_record(project, "hang")
    wait_for(lambda: project.state().spec("a").stage == "plan", timeout=20, what="plan saved")
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    return hang


def test_resume_after_sigkill_ends_the_surviving_agent_first(
    project: Project, run_cli: RunCli
) -> None:
    hang = _driver_killed_at_plan(project)
    assert pid_alive(hang["pid"])  # its own session: it outlived the driver
    assert project.state().spec("a").agent_pid == hang["pid"]
    project.fake.control([])
    assert run_cli("resume", "r") == 0
    assert not pid_alive(hang["pid"])
    assert project.statuses() == {"a": "completed"}
    # plan.yaml may be half-written when the agent hung in plan: plan is done again
    assert project.stages("a") == ["specify", "plan", "plan", "tasks", "implement"]


@pytest.mark.parametrize("command", ["resume", "retry"])
def test_the_time_of_an_attempt_whose_driver_was_killed_is_kept(
    project: Project, run_cli: RunCli, command: str
) -> None:
    """kill -9 of the driver: its running attempt ended when the spec was last seen alive
    (its log's last write), and that time counts in the state file and the report, as a
    Ctrl-C's does; not zero. ``retry`` of another, failed spec settles it the same way."""
    from datetime import UTC, datetime, timedelta

    import attrs

    from dagspec import state
    from dagspec.workspace import RunPaths

    failing = {"match": "^Build a$", "FAIL_AT": "plan"}
    project.fake.control([failing, {"match": "^Build b$", "HANG_AT": "plan"}])
    project.write_dag(dag_text("a", "b"))
    driver = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r", "--parallel")
    wait_for_record(project, "hang")
    ready = {"a": "failed", "b": "running"}
    wait_for(lambda: project.statuses() == ready, timeout=20, what="a failed, b running")
    wait_for(lambda: project.state().spec("b").stage == "plan", timeout=20, what="plan saved")
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    # b's attempt began an hour ago, and its log was last written 40 minutes later
    b = project.state().spec("b")
    assert b.finished_at is None and b.log is not None
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    paths = RunPaths(project.repo, "r")
    state.save(project.state().with_spec(attrs.evolve(b, started_at=started)), paths.state_file)
    last = started + timedelta(minutes=40)
    os.utime(b.log, (last.timestamp(), last.timestamp()))
    # before any driver takes the run again, its readers time the attempt the same way
    card = json.loads(_report_json(project, run_cli))
    assert card["specs"][1]["duration_seconds"] == card["specs"][1]["agent_seconds"] == 2400
    assert _time_of(project, run_cli, "b") == "40m00s"
    project.fake.control([])
    code = run_cli(command, "r", *(["a"] if command == "retry" else []))
    assert code == (1 if command == "retry" else 0)  # retry leaves b interrupted
    b = project.state().spec("b")
    if command == "retry":  # b is not retried: interrupted, its attempt ended then
        assert (b.status.value, b.finished_at) == ("interrupted", last)
        assert b.agent_seconds(datetime.now(UTC)) == 40 * 60
    else:
        assert (b.status.value, b.attempts) == ("completed", 2)
        assert b.earlier_seconds == 40 * 60  # the killed attempt: start to last sign of life
    card = json.loads(_report_json(project, run_cli))
    assert [s["agent_seconds"] >= 40 * 60 for s in card["specs"]] == [False, True]
    # the row of b counts the killed attempt as the total does, even under a new attempt
    assert _time_of(project, run_cli, "b").startswith("40m0")


def test_a_killed_driver_s_run_ends_when_it_was_last_seen_alive(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 of the driver: report (text and JSON) and list end the run at its last sign
    of life (the latest of its logs' last writes and the state file's), the same on every
    call, not now; and they write nothing."""
    from datetime import UTC, datetime, timedelta

    import attrs

    from dagspec import state
    from dagspec.workspace import RunPaths

    hang = _driver_killed_at_plan(project)
    os.kill(int(str(hang["pid"])), signal.SIGKILL)  # the agent outlived its driver
    # the run began an hour ago; its state was last written 30 minutes later, its log 40
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    a = project.state().spec("a")
    run = attrs.evolve(project.state(), started_at=began)
    paths = RunPaths(project.repo, "r")
    state.save(run.with_spec(attrs.evolve(a, started_at=began)), paths.state_file)
    for path, minutes in ((paths.state_file, 30), (Path(a.log or ""), 40)):
        seen = (began + timedelta(minutes=minutes)).timestamp()
        os.utime(path, (seen, seen))
    recorded = paths.state_file.read_text(), paths.state_file.stat().st_mtime
    last_seen = state.format_time(began + timedelta(minutes=40))
    for _ in range(2):  # the same on every call
        assert run_cli("report", "r") == 0
        assert ", 40m00s wall, 40m00s agent time" in capsys.readouterr().out
        assert run_cli("report", "r", "--json") == 0
        card = json.loads(capsys.readouterr().out)
        assert (card["status"], card["finished_at"]) == ("interrupted", last_seen)
        assert card["totals"]["duration_seconds"] == 2400
        assert run_cli("list") == 0
        row = capsys.readouterr().out.splitlines()[1]
        assert "interrupted" in row and "40m00s" in row, row
        assert run_cli("list", "--json") == 0
        assert json.loads(capsys.readouterr().out)[0]["finished_at"] == last_seen
    assert (paths.state_file.read_text(), paths.state_file.stat().st_mtime) == recorded


def _time_of(project: Project, run_cli: RunCli, spec_id: str) -> str:
    """The TIME cell of ``spec_id``'s row in the text report."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_cli("report", "r") == 0
    lines = out.getvalue().splitlines()
    header = lines[1]
    row = next(line for line in lines if line.startswith(f"{spec_id} "))
    return row[header.index("TIME") :].split()[0]


def _report_json(project: Project, run_cli: RunCli) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_cli("report", "r", "--json") == 0
    return out.getvalue()


def wait_for_record(project: Project, event: str) -> dict[str, object]:
    wait_for(lambda: project.fake.events(event), timeout=20, what=event)
    return project.fake.events(event)[0]


def test_a_deleted_worktree_is_recreated_from_its_branch(project: Project, run_cli: RunCli) -> None:
    project.fake.setenv("COMMIT", "always")
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "tasks"}])
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r") == 1
    shutil.rmtree(project.worktree("a"))
    project.fake.control([])
    assert run_cli("resume", "r") == 0
    assert project.starts()[-1]["argv"][:2] == ["run", "-ti"]


def test_a_worktree_deleted_under_its_agent_is_the_reason_and_retry_mends_it(
    project: Project, gates: Gatekeeper, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rm -rf`` of a running spec's worktree: the agent fails in a directory that is gone,
    and the reason says what happened, not only autospec's exit code."""
    project.fake.control([{"match": "^Build a$", "GATES": "plan"}])
    worktree = project.worktree("a")
    gates.hold("plan", 1, then=lambda: shutil.rmtree(worktree))
    dag = project.write_dag(dag_text("a", "b"))
    assert run_cli("run", dag, "--parallel", "--run-id", "r") == 1
    gates.check()
    assert project.statuses()["a"] == "failed"
    error = project.state().spec("a").error or ""
    assert error.startswith(f"its worktree {worktree} was deleted while autospec ran (autospec ")
    project.fake.control([])
    assert run_cli("retry", "r", "a") == 0
    assert project.statuses() == {"a": "completed", "b": "completed"}


def test_a_spec_whose_worktree_and_branch_were_deleted_starts_afresh(
    project: Project, run_cli: RunCli
) -> None:
    """Nothing of it is left to go on with: resume does it again from specify, rather than
    fail it for good (which left only a retry that failed the same way)."""
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r") == 1
    git(project.repo, "worktree", "remove", "--force", str(project.worktree("a")))
    git(project.repo, "branch", "-D", "dag/r/a")
    project.fake.control([])
    assert run_cli("resume", "r") == 0
    assert project.statuses() == {"a": "completed"}
    assert project.starts()[-1]["argv"][:2] == ["run", "-spti"]


def test_resume_continues_the_recorded_dag_and_says_the_file_changed(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r") == 1
    project.write_dag(dag_text("a", "new"))
    project.fake.control([])
    capsys.readouterr()
    assert run_cli("resume", "r", "--parallel") == 0
    assert "dag.yaml has changed since run r started" in capsys.readouterr().err
    assert project.statuses() == {"a": "completed"}
    assert project.state().options.parallel


def test_resume_of_a_finished_run_does_nothing(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r") == 0
    starts = len(project.starts())
    assert run_cli("resume", "r") == 0
    assert len(project.starts()) == starts
    assert "run r completed" in capsys.readouterr().out


@pytest.mark.parametrize("command", [("resume", "nope"), ("retry", "nope", "a")])
def test_an_unknown_run_is_refused_and_nothing_is_written(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    assert run_cli(*command) == 1
    assert "no run 'nope'" in capsys.readouterr().err
    assert not (project.repo / ".autospec" / "state").exists()


# --- retry -----------------------------------------------------------------------------------


def test_retry_after_fixing_the_failing_spec(project: Project, run_cli: RunCli) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "implement"}])
    dag = project.write_dag(dag_text("a", ("b", ["a"]), "c"))
    assert run_cli("run", dag, "--parallel", "--run-id", "r") == 1
    assert project.statuses() == {"a": "failed", "b": "blocked", "c": "completed"}
    project.fake.control([])
    assert run_cli("retry", "r", "a") == 0
    state = project.state()
    assert project.statuses() == dict.fromkeys("abc", "completed")
    assert all(s.merged for s in state.specs)
    assert state.spec("a").attempts == 2
    assert project.stages("c") == ["specify", "plan", "tasks", "implement"]
    assert branches(project.repo) == ["main"]


def test_retry_leaves_other_failures_and_what_waits_for_them(
    project: Project, run_cli: RunCli
) -> None:
    project.fake.control([{"match": "^Build [ab]$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", "b", ("c", ["a"]), ("d", ["b"])))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 1
    project.fake.control([{"match": "^Build b$", "FAIL_AT": "plan"}])
    assert run_cli("retry", "r", "a") == 1
    assert project.statuses() == {"a": "completed", "b": "failed", "c": "completed", "d": "blocked"}
    assert project.state().spec("d").blocked_by == ("b",)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=str)
def test_a_retry_that_leaves_a_spec_interrupted_is_an_interrupted_run_everywhere(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    how: signal.Signals,
) -> None:
    """b was interrupted (its driver signalled, or killed) and a failed; a retry of a that
    succeeds leaves b interrupted and none failed: the run is interrupted, not failed, in
    the retry's summary and notice, `dag status`, `report` and `list`, with and without
    --json. The retry was not signalled: exit 1, and a is merged as after a failure."""
    project.fake.control(
        [{"match": "^Build a$", "FAIL_AT": "plan"}, {"match": "^Build b$", "HANG_AT": "plan"}]
    )
    project.write_dag(dag_text("a", "b", ("c", ["b"])))
    driver = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r", "--parallel")
    wait_for_record(project, "hang")
    ready = {"a": "failed", "b": "running", "c": "pending"}
    wait_for(lambda: project.statuses() == ready, timeout=20, what="a failed, b running")
    driver.send_signal(how)
    driver.communicate(timeout=30)
    project.fake.control([])
    notices = tmp_path / "notices"
    capsys.readouterr()
    notify = f'echo "$DAG_EVENT $DAG_STATUS" >> {notices}'
    assert run_cli("retry", "r", "a", "--notify", notify) == 1
    retried = capsys.readouterr().out
    assert project.statuses() == {"a": "completed", "b": "interrupted", "c": "blocked"}
    assert project.state().spec("a").merged
    assert "report of run r: interrupted" in retried
    assert "run r interrupted: 1 completed, 1 blocked, 1 interrupted" in retried
    assert retried.endswith("next: dag resume r\n")
    assert notices.read_text().splitlines()[-1] == "run-finished interrupted"
    assert run_cli("status", "r") == 1
    assert "run r interrupted: " in capsys.readouterr().out
    shown = {}
    for command in (["status", "r", "--json"], ["report", "r", "--json"], ["list", "--json"]):
        run_cli(*command)
        data = json.loads(capsys.readouterr().out)
        shown[command[0]] = (data[0] if command[0] == "list" else data)["status"]
    assert shown == dict.fromkeys(["status", "report", "list"], "interrupted")
    assert run_cli("report", "r") == 0
    assert "report of run r: interrupted" in capsys.readouterr().out
    assert run_cli("list") == 0
    assert "! interrupted" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "b",
            "spec 'b' is blocked, not failed; only failed specs (and specs waiting for a usage "
            "limit) are retried: it waits for a",
        ),
        ("c", "spec 'c' is completed, not failed"),
        ("x", "run 'r' has no spec 'x'"),
    ],
)
def test_retry_refuses_what_did_not_fail(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", ("b", ["a"]), "c"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 1
    starts = len(project.starts())
    assert run_cli("retry", "r", spec) == 1
    assert message in capsys.readouterr().err
    assert len(project.starts()) == starts


def test_the_state_file_always_names_the_format_first(project: Project, run_cli: RunCli) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    text = (project.repo / ".autospec" / "state" / "dag-runs" / "r.yaml").read_text()
    assert text.startswith("format: 1\n")
    assert json.loads(text.split("\n")[1].split(": ", 1)[1]) == "r"


def test_a_worktree_made_ahead_for_a_spec_a_stop_kept_from_starting_is_removed(
    project: Project, run_cli: RunCli
) -> None:
    """One at a time, b's worktree is made while a runs (issue 16); a fails under
    --fail-fast, so b never starts and stays pending with nothing recorded, and what was
    made ahead is removed with its branch: nothing is left that cleanup would not know."""
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", "b"))
    assert run_cli("run", dag, "--max-parallel", "1", "--fail-fast", "--run-id", "r") == 1
    b = project.state().spec("b")
    assert (b.status.value, b.attempts, b.worktree, b.branch) == ("pending", 0, None, None)
    assert branches(project.repo) == ["dag/r/a", "main"]  # b's, made ahead, is gone
    assert not project.worktree("b").exists()
    project.fake.control([])
    assert run_cli("resume", "r") == 0
    assert project.statuses() == {"a": "completed", "b": "completed"}
    assert project.state().spec("b").attempts == 1
    assert branches(project.repo) == ["main"]
    assert project.stages("b") == ["specify", "plan", "tasks", "implement"]


@pytest.mark.parametrize("command", ["retry", "resume"])
def test_a_recorded_autospec_that_is_gone_is_named_as_the_run_s(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """The run was started with --autospec (the demo's, say), since deleted: resume and
    retry, given none, name it as the one the run recorded and say how to give another,
    which is then recorded in its turn."""
    own = tmp_path / "demo" / "autospec"
    own.parent.mkdir()
    shutil.copy(project.fake.path, own)
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", "b"))
    assert run_cli("run", dag, "--run-id", "r", "--autospec", own) == 1
    shutil.rmtree(own.parent)
    project.fake.control([])
    monkeypatch.setenv("DAGSPEC_AUTOSPEC", str(project.fake.path))
    again = ["retry", "r", "a"] if command == "retry" else ["resume", "r"]
    capsys.readouterr()
    assert run_cli(*again) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"dag: error: the autospec executable '{own}' that run 'r' recorded (it was started "
        f"with --autospec) is gone: name the one to use now with `dag {' '.join(again)} "
        "--autospec CMD`"
    )
    assert err.count("\n") == 1
    assert project.statuses()["a"] == "failed"
    assert run_cli(*again, "--autospec", project.fake.path) == 0
    assert project.state().options.autospec == str(project.fake.path)


def _tools(place: Path, fake: Path) -> Path:
    """A copy of the stand-in autospec at ``place/tools/autospec``."""
    (place / "tools").mkdir(parents=True)
    shutil.copy(fake, place / "tools" / "autospec")
    return place / "tools" / "autospec"


@pytest.mark.parametrize("command", ["resume", "retry"])
@pytest.mark.parametrize(
    ("given", "when"), [("./tools/autospec", "run"), ("tools/autospec", "again")]
)
def test_a_relative_autospec_is_recorded_absolute_for_a_command_typed_elsewhere(
    project: Project,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    given: str,
    when: str,
) -> None:
    """It was recorded as typed, so a ``resume`` or ``retry`` typed in another directory
    looked for it there (and said the run's one was not found); given to them relative,
    it is recorded absolute too."""
    first, second = (
        _tools(tmp_path / "one", project.fake.path),
        _tools(tmp_path / "two", project.fake.path),
    )
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", "b"))
    monkeypatch.chdir(first.parent.parent)
    typed = given if when == "run" else str(first)
    assert run_cli("--repo", project.repo, "run", dag, "--run-id", "r", "--autospec", typed) == 1
    project.fake.control([])
    monkeypatch.chdir(second.parent.parent if when == "again" else project.repo)
    again = ["retry", "r", "a"] if command == "retry" else ["resume", "r"]
    flags = ["--autospec", given] if when == "again" else []
    assert run_cli("--repo", project.repo, *again, *flags) == 0
    assert project.statuses() == {"a": "completed", "b": "completed"}
    assert project.state().options.autospec == str(second if when == "again" else first)


def _new_shell(
    project: Project, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Run ``r`` (a fails) started with $DAGSPEC_AUTOSPEC, then a shell without it and with
    no autospec on PATH; the autospec the run ran."""
    own = _tools(tmp_path / "demo", project.fake.path)
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", "b"))
    monkeypatch.setenv("DAGSPEC_AUTOSPEC", str(own))
    assert run_cli("run", dag, "--run-id", "r") == 1
    assert project.state().autospec == str(own)
    project.fake.control([])
    monkeypatch.delenv("DAGSPEC_AUTOSPEC")
    path = os.environ["PATH"].split(os.pathsep)
    monkeypatch.setenv(
        "PATH", os.pathsep.join(p for p in path if p != str(project.fake.path.parent))
    )
    return own


@pytest.mark.parametrize("command", ["retry", "resume"])
def test_an_autospec_not_found_in_a_new_shell_falls_back_to_the_one_the_run_used(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """Started with $DAGSPEC_AUTOSPEC, resumed from a shell without it and with no autospec
    on PATH: the error named the autospec the run recorded (``RunState.autospec``) but did
    not use it, though it comes last in README's order. It is used, with a note saying so."""
    own = _new_shell(project, run_cli, tmp_path, monkeypatch)
    again = ["retry", "r", "a"] if command == "retry" else ["resume", "r"]
    capsys.readouterr()
    assert run_cli(*again) == 0
    err = capsys.readouterr().err
    assert err == (
        f"note: no autospec on PATH and no $DAGSPEC_AUTOSPEC: using {own}, the one run 'r' "
        f"last ran (`dag {' '.join(again)} --autospec CMD` names another)\n"
    )
    assert project.statuses() == {"a": "completed", "b": "completed"}
    assert project.state().autospec == str(own)


@pytest.mark.parametrize("gone", ["dagspec_autospec", "the_run_s", "not_executable"])
def test_an_autospec_not_found_in_a_new_shell_is_named_when_it_cannot_be_used(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gone: str,
) -> None:
    """A $DAGSPEC_AUTOSPEC naming what is not there is told of, not passed over; the one
    the run last ran, deleted (the demo's directory), cannot stand in."""
    own = _new_shell(project, run_cli, tmp_path, monkeypatch)
    if gone == "dagspec_autospec":
        monkeypatch.setenv("DAGSPEC_AUTOSPEC", str(tmp_path / "nowhere"))
        said = "'" + str(tmp_path / "nowhere") + "' (from $DAGSPEC_AUTOSPEC)"
        last = f": use it again with `dag resume r --autospec {own}`"
    elif gone == "the_run_s":
        own.unlink()
        said = "'autospec' (from PATH)"
        last = ", which is gone too: name one with `dag resume r --autospec CMD`"
    else:  # it was told "gone too", though it is there: `chmod +x` is all it takes
        own.chmod(0o644)
        said = "'autospec' (from PATH)"
        last = (
            f", which is not executable (`chmod +x {own}` makes it so): name one with "
            "`dag resume r --autospec CMD`"
        )
    capsys.readouterr()
    assert run_cli("resume", "r") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dag: error: the autospec executable {said} was not")
    assert err.endswith(f"; run 'r' last used {own}{last}\n")
    assert err.count("\n") == 1
    assert project.statuses()["a"] == "failed"


@pytest.mark.parametrize("command", ["retry", "resume"])
def test_an_autospec_given_by_name_is_run_from_where_it_was_found_in_a_new_shell(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """`--autospec autospec-dev`, found on the PATH of the shell that started the run: from
    a shell whose PATH lacks it, resume and retry said the run's one was not found, though
    the file it was found as (recorded, absolute) was there. It is used, with a note; gone
    or not executable, that file is named, with why."""
    tools = _tools(tmp_path / "one", project.fake.path).parent
    (tools / "autospec").rename(tools / "autospec-dev")
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", "b"))
    path = os.environ["PATH"].split(os.pathsep)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tools), *path]))
    assert run_cli("run", dag, "--run-id", "r", "--autospec", "autospec-dev") == 1
    assert project.state().options.autospec == "autospec-dev"
    project.fake.control([])
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    again = ["retry", "r", "a"] if command == "retry" else ["resume", "r"]
    (tools / "autospec-dev").chmod(0o644)
    capsys.readouterr()
    assert run_cli(*again) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"dag: error: the autospec executable 'autospec-dev' (found as {tools}/autospec-dev) "
        f"that run 'r' recorded (it was started with --autospec) is not executable (`chmod "
        f"+x {tools}/autospec-dev` makes it so): name the one to use now with "
    ), err
    (tools / "autospec-dev").chmod(0o755)

    assert run_cli(*again) == 0
    err = capsys.readouterr().err
    assert err == (
        f"note: 'autospec-dev' is not on PATH: using {tools}/autospec-dev, the file run 'r' "
        f"found it as (`dag {' '.join(again)} --autospec CMD` names another)\n"
    )
    assert project.statuses() == {"a": "completed", "b": "completed"}


def test_a_new_run_in_a_new_shell_names_the_autospec_an_earlier_run_ran_and_does_not_use_it(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README read as if a new ``dag run`` fell back to the autospec the last run recorded,
    as ``resume`` and ``retry`` do; it does not (that one may be a demo's, or an old
    version): the error names it for ``--autospec``, and nothing is run."""
    own = _new_shell(project, run_cli, tmp_path, monkeypatch)
    capsys.readouterr()
    assert run_cli("run", "dag.yaml", "--run-id", "r2") == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        "dag: error: the autospec executable 'autospec' (from PATH) was not found or is not "
        "executable: install autospec, or name it with --autospec or $DAGSPEC_AUTOSPEC (run "
        f"'r' ran {own}: `--autospec {own}` uses it again; a new run never does on its own)"
    )
    assert [s.run_id for s in state.list_runs(project.repo)[0]] == ["r"]
