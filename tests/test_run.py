"""``dag run`` end to end: real git, real processes, the fake autospec (README, How a run works)."""

from __future__ import annotations

import json
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dagspec.console import dag_command
from dagspec.dagfile import load_dag
from dagspec.lifecycle import RunOptions
from tests.conftest import ROOT, git
from tests.engine_support import (
    HOLD,
    Gatekeeper,
    Project,
    branches,
    dag_text,
    group_alive,
    pid_alive,
    start_dag,
)
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

RunCli = Callable[..., int]


def overlap(records: list[dict[str, Any]]) -> int:
    """The most fakes alive at once, from the log's start and exit records (in log order)."""
    alive, most = 0, 0
    for record in records:
        alive += {"start": 1, "exit": -1}.get(record["event"], 0)
        most = max(most, alive)
    return most


# --- the plan ------------------------------------------------------------------------------


def test_dry_run_prints_waves_and_commands_and_touches_nothing(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a", ("b", ["a"]), "c"))
    assert run_cli("run", dag, "--dry-run", "--run-id", "r") == 0
    out = capsys.readouterr().out
    assert "wave 1:\n  a\n" in out
    assert "wave 2:\n  b (after a)\n" in out
    assert "autospec run -spti -y 'Build a'" in out
    assert not (project.repo / ".autospec" / "state").exists()
    assert branches(project.repo) == ["main"]
    assert project.fake.events() == []
    assert "preflight:\n  ok       git 2.38 or newer\n" in out


@pytest.mark.parametrize(
    ("version", "said", "command"),
    [
        ("0.10.4", "autospec fake-0.10.4\n", "/autospec run -pti --spec 001-a -y"),
        (
            "0.7.3",
            "autospec fake-0.7.3 (below 0.10.4: a spec goes on without --spec)\n",
            "/autospec run -pti -y",  # its --spec is broken
        ),
    ],
)
def test_a_spec_with_its_own_spec_yaml_is_planned_from_plan(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    version: str,
    said: str,
    command: str,
) -> None:
    project.fake.setenv("VERSION", version)
    (project.repo / "specs" / "001-a").mkdir(parents=True)
    (project.repo / "specs" / "001-a" / "spec.yaml").write_text("feature: {}\n")
    dag = project.write_dag(dag_text("001-a"))
    assert run_cli("run", dag, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "    SPECIFY_FEATURE=001-a " in out
    assert f"\nautospec: {said}" in out
    assert f"{command}\n" in out


def test_a_missing_autospec_is_an_error_before_anything_starts(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--autospec", "/no/such/autospec") == 1
    assert "'/no/such/autospec' (from --autospec) was not found" in capsys.readouterr().err
    assert not (project.repo / ".autospec" / "state").exists()


def test_a_detached_head_is_an_error(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    git(project.repo, "checkout", "-q", "--detach")
    assert run_cli("run", project.write_dag(dag_text("a"))) == 1
    assert "HEAD is detached" in capsys.readouterr().err


def test_a_missing_base_branch_is_an_error(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a", extra='execution:\n  base_branch: "nope"'))
    assert run_cli("run", dag) == 1
    assert "the base branch 'nope' does not exist" in capsys.readouterr().err


# --- order and parallelism -------------------------------------------------------------------


def test_sequential_by_default_and_merged_at_the_end(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a", "b", "c"))
    assert run_cli("run", dag, "--run-id", "r") == 0
    assert overlap(project.fake.events()) == 1
    assert [r["argv"][-1] for r in project.starts()] == ["Build a", "Build b", "Build c"]
    assert project.statuses() == dict.fromkeys("abc", "completed")
    out = capsys.readouterr().out
    assert re.search(r"\] a: specify\n", out)
    assert re.search(r"\] c: completed\n", out)
    log = git(project.repo, "log", "--format=%s", "main")
    assert all(f"dag(r): {spec}" in log for spec in "abc")
    assert all(not project.worktree(spec).exists() for spec in "abc")
    state = project.state()
    assert all(s.merged and s.tasks_done == s.tasks_total == 2 for s in state.specs)


def test_five_specs_really_run_in_parallel(
    project: Project, gates: Gatekeeper, run_cli: RunCli
) -> None:
    project.fake.setenv("GATES", "specify")
    gates.hold("specify", 5)
    dag = project.write_dag(dag_text(*"abcde"))
    assert run_cli("run", dag, "--parallel", "--max-parallel", "5", "--no-merge") == 0
    gates.check()
    assert len(gates.seen["specify"]) == 5


def test_the_limit_is_never_exceeded(project: Project, gates: Gatekeeper, run_cli: RunCli) -> None:
    project.fake.setenv("GATES", "specify")
    gates.hold("specify", 2)
    dag = project.write_dag(dag_text(*"abcd"))
    assert run_cli("run", dag, "--parallel", "--max-parallel", "2", "--no-merge") == 0
    gates.check()
    assert overlap(project.fake.events()) == 2


def test_execution_max_parallel_is_the_default_limit(
    project: Project, gates: Gatekeeper, run_cli: RunCli
) -> None:
    project.fake.setenv("GATES", "specify")
    gates.hold("specify", 3)
    dag = project.write_dag(dag_text(*"abcd", extra="execution:\n  max_parallel: 3"))
    assert run_cli("run", dag, "--parallel", "--no-merge") == 0
    gates.check()
    assert overlap(project.fake.events()) == 3


def test_a_dependent_starts_after_its_dependency_and_sees_its_work(
    project: Project, run_cli: RunCli
) -> None:
    dag = project.write_dag(dag_text("a", ("b", ["a"])))
    assert run_cli("run", dag, "--parallel", "--run-id", "r", "--no-merge") == 0
    events = [(r["event"], r.get("description")) for r in project.fake.events()]
    assert events.index(("exit", "Build a")) < [e for e, _ in events].index("start", 1)
    a_dir = project.state().spec("a").spec_dir
    assert a_dir is not None
    b_files = git(project.repo, "ls-tree", "-r", "--name-only", "dag/r/b").split()
    assert f"{a_dir}/spec.yaml" in b_files
    assert git(project.repo, "merge-base", "--is-ancestor", "dag/r/a", "dag/r/b") == ""


def test_a_layer_waits_for_every_feature_of_the_layer_it_depends_on(
    project: Project, run_cli: RunCli
) -> None:
    dag = project.write_dag(
        "layers:\n"
        '  - id: "L0"\n    features:\n'
        '      - {id: "a", description: "Build a"}\n'
        '      - {id: "b", description: "Build b"}\n'
        '  - id: "L1"\n    depends_on: ["L0"]\n    features:\n'
        '      - {id: "c", description: "Build c"}\n'
    )
    assert run_cli("run", dag, "--parallel", "--run-id", "r", "--no-merge") == 0
    order = [r.get("description") for r in project.fake.events("exit")]
    assert order[-1] == "Build c"
    assert project.state().spec("c").depends_on == ("a", "b")


def test_parallel_specifies_get_distinct_numbers(
    project: Project, gates: Gatekeeper, run_cli: RunCli
) -> None:
    (project.repo / "specs" / "007-old").mkdir(parents=True)
    (project.repo / "specs" / "007-old" / "spec.yaml").write_text("feature: {}\n")
    git(project.repo, "add", "specs")
    git(project.repo, "commit", "-q", "-m", "old spec")
    project.fake.setenv("GATES", "specify")
    gates.hold("specify", 4)
    dag = project.write_dag(dag_text(*"abcd"))
    assert run_cli("run", dag, "--parallel", "--run-id", "r") == 0
    gates.check()
    dirs = sorted(s.spec_dir or "" for s in project.state().specs)
    assert [d[:10] for d in dirs] == ["specs/008-", "specs/009-", "specs/010-", "specs/011-"]
    assert sorted(p.name[:4] for p in (project.repo / "specs").iterdir()) == [
        "007-",
        "008-",
        "009-",
        "010-",
        "011-",
    ]


# --- what autospec gets ----------------------------------------------------------------------


ENV_KEYS = (
    "AUTOSPEC_STATE_DIR",
    "AUTOSPEC_SKIP_PERMISSIONS_NOTICE",
    "AUTOSPEC_YES",
    "SPECIFY_FEATURE",
    "GIT_DIR",
)


def test_each_agent_gets_its_environment_and_its_own_session(
    project: Project, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    record = tmp_path / "env.json"
    wrapper = tmp_path / "autospec-wrapper"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"keys = {ENV_KEYS!r}\n"
        f"open({str(record)!r}, 'w').write(json.dumps({{k: os.environ.get(k) for k in keys}}))\n"
        f"os.execv({str(project.fake.path)!r}, ['autospec', *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("SPECIFY_FEATURE", "inherited")
    monkeypatch.setenv("GIT_DIR", str(project.repo / ".git"))
    monkeypatch.setenv("DAGSPEC_AUTOSPEC", str(wrapper))
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    start = project.starts()[0]
    assert start["cwd"] == str(project.worktree("a"))
    assert start["pgid"] == start["pid"]  # its own session
    assert start["argv"] == ["run", "-spti", "-y", "Build a"]
    state_dir = project.repo / ".autospec" / "state" / "dag-runs" / "r" / "autospec-state" / "a"
    assert json.loads(record.read_text()) == {
        "AUTOSPEC_STATE_DIR": str(state_dir),
        "AUTOSPEC_SKIP_PERMISSIONS_NOTICE": "1",
        "AUTOSPEC_YES": "1",
        "SPECIFY_FEATURE": None,
        "GIT_DIR": None,
    }


@pytest.mark.parametrize(
    ("feature", "flag", "execution", "expected"),
    [
        ("30m", "2h", "4h", 1800.0),
        (None, "2h", "4h", 7200.0),
        (None, None, "4h", 14400.0),
        (None, None, None, None),
    ],
)
def test_time_limits_feature_then_flag_then_execution(
    tmp_path: Path,
    feature: str | None,
    flag: str | None,
    execution: str | None,
    expected: float | None,
) -> None:
    from dagspec.driving import spec_timeouts
    from dagspec.durations import parse_duration

    path = tmp_path / "dag.yaml"
    path.write_text(
        (f'execution:\n  timeout: "{execution}"\n' if execution else "")
        + 'layers:\n  - id: "L0"\n    features:\n      - id: "a"\n        description: "d"\n'
        + (f'        timeout: "{feature}"\n' if feature else "")
    )
    options = RunOptions(timeout=parse_duration(flag) if flag else None)
    assert spec_timeouts(load_dag(path), options) == {"a": expected}


def test_a_conflict_is_exit_1_and_keeps_the_worktree(project: Project, run_cli: RunCli) -> None:
    project.fake.setenv("TOUCH", "shared.txt")
    dag = project.write_dag(dag_text("a", "b"))
    assert run_cli("run", dag, "--parallel", "--run-id", "r") == 1
    state = project.state()
    assert sorted(project.statuses().values()) == ["completed", "failed"]  # b joins second
    loser = next(s for s in state.specs if s.status.value == "failed")
    assert "shared.txt" in (loser.error or "")
    assert [s.merged for s in state.specs if s is not loser] == [True]
    assert project.worktree(loser.id).exists()


def test_a_description_with_quotes_newlines_and_a_leading_dash_arrives_intact(
    project: Project, run_cli: RunCli
) -> None:
    description = "-x \"double\" and 'single'\nsecond line $HOME `id`"
    dag = project.write_dag(
        "layers:\n"
        '  - id: "L0"\n    features:\n'
        '      - id: "a"\n'
        "        description: " + '"' + description.replace('"', '\\"').replace("\n", "\\n") + '"\n'
    )
    assert run_cli("run", dag, "--no-merge") == 0
    assert project.starts()[0]["argv"] == ["run", "-spti", "-y", "--", description]


def test_a_run_from_inside_a_git_hook_works(
    project: Project, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = project.write_dag(dag_text("a", "b"))
    index_before = (project.repo / ".git" / "index").read_bytes()
    monkeypatch.setenv("GIT_DIR", str(project.repo / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(project.repo / ".git" / "index"))
    monkeypatch.setenv("GIT_WORK_TREE", str(project.repo))
    monkeypatch.setenv("GIT_PREFIX", "")
    assert run_cli("run", dag, "--parallel", "--run-id", "r", "--no-merge") == 0
    assert project.statuses() == {"a": "completed", "b": "completed"}
    assert (project.repo / ".git" / "index").read_bytes() == index_before
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    monkeypatch.delenv("GIT_WORK_TREE")
    files = git(project.repo, "ls-tree", "-r", "--name-only", "dag/r/b").split()
    assert any(f.startswith("fake_impl/") for f in files)


# --- branches and commits --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["always", "auto"])
def test_the_work_lands_on_the_spec_branch_whatever_autospec_checks_out(
    project: Project, run_cli: RunCli, mode: str
) -> None:
    project.fake.setenv("BRANCH", mode)
    dag = project.write_dag(dag_text("a", ("b", ["a"])))
    assert run_cli("run", dag, "--parallel", "--run-id", "r", "--keep-worktrees") == 0
    assert sorted(branches(project.repo)) == ["dag/r/a", "dag/r/b", "main"]
    for spec in "ab":
        head = git(project.worktree(spec), "symbolic-ref", "--short", "HEAD").strip()
        assert head == f"dag/r/{spec}"
        spec_dir = project.state().spec(spec).spec_dir
        impl = f"fake_impl/{Path(spec_dir or '').name}/T001.txt"
        assert (project.repo / impl).is_file()
    assert git(project.worktree("a"), "status", "--porcelain") == ""


def test_copied_configuration_is_never_committed_even_by_the_agent(
    project: Project, run_cli: RunCli
) -> None:
    (project.repo / ".claude" / "commands").mkdir(parents=True)
    (project.repo / ".claude" / "commands" / "autospec.specify.md").write_text("x\n")
    project.fake.setenv("COMMIT", "always")
    dag = project.write_dag(dag_text("a", ("b", ["a"])))
    assert run_cli("run", dag, "--parallel", "--run-id", "r") == 0
    committed = git(project.repo, "log", "--all", "--name-only", "--format=")
    assert ".autospec/" not in committed
    assert ".claude/" not in committed
    messages = git(project.repo, "log", "--format=%s", "main")
    assert "docs(spec)" in messages  # the agent did commit, with git add -A


# --- failures --------------------------------------------------------------------------------


def test_a_failure_blocks_its_dependents_and_independent_specs_finish(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", ("b", ["a"]), ("c", ["b"]), "d"))
    assert run_cli("run", dag, "--parallel", "--run-id", "r") == 1
    state = project.state()
    assert project.statuses() == {
        "a": "failed",
        "b": "blocked",
        "c": "blocked",
        "d": "completed",
    }
    assert state.spec("b").blocked_by == ("a",)
    assert state.spec("c").blocked_by == ("a",)
    error = state.spec("a").error or ""
    assert error.startswith("autospec exited with 1 during plan: Error: executing stage plan")
    assert state.spec("a").exit_code == 1
    assert state.spec("d").merged
    out = capsys.readouterr().out
    assert "a: failed: autospec exited with 1 during plan" in out
    assert "dag retry r a" in out


def test_fail_fast_stops_the_run(project: Project, gates: Gatekeeper, run_cli: RunCli) -> None:
    project.fake.control(
        [
            {"match": "^Build a$", "FAIL_AT": "plan", "GATES": "plan"},
            {"match": "^Build b$", "HANG_AT": "plan"},
        ]
    )
    gates.hold(
        "plan",
        1,
        then=lambda: wait_for(lambda: project.fake.events("hang"), timeout=HOLD, what="hang"),
    )
    dag = project.write_dag(dag_text("a", "b", "c"))
    assert (
        run_cli("run", dag, "--parallel", "--max-parallel", "2", "--fail-fast", "--run-id", "r")
        == 1
    )
    gates.check()
    assert project.statuses() == {"a": "failed", "b": "interrupted", "c": "pending"}
    assert project.state().status.value == "failed"


def test_a_dependency_conflict_fails_the_spec_naming_the_files(
    project: Project, run_cli: RunCli
) -> None:
    project.fake.setenv("TOUCH", "shared.txt")
    dag = project.write_dag(dag_text("a", "b", ("c", ["a", "b"])))
    assert run_cli("run", dag, "--parallel", "--run-id", "r", "--no-merge") == 1
    state = project.state()
    failed = [s for s in state.specs if s.status.value == "failed"]
    assert len(failed) == 1 and failed[0].id in {"a", "b"}  # the second to complete
    assert "shared.txt" in (failed[0].error or "")
    assert state.spec("c").status.value == "blocked"
    assert "dag/r/c" not in branches(project.repo)
    assert not project.worktree("c").exists()


# --- processes -------------------------------------------------------------------------------


def test_sigint_interrupts_the_run_and_leaves_no_process(project: Project) -> None:
    project.fake.setenv("HANG_AT", "implement")
    project.fake.setenv("CHILD", "inherit")
    project.write_dag(dag_text("a", "b"))
    driver = start_dag(project.repo, "run", "dag.yaml", "--parallel", "--run-id", "r")
    wait_for(lambda: len(project.fake.events("hang")) == 2, timeout=20, what="two hangs")
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=30)
    assert driver.returncode == 130, out + err
    assert project.state().status.value == "interrupted"
    assert project.statuses() == {"a": "interrupted", "b": "interrupted"}
    groups = {r["pgid"] for r in project.starts()}
    children = [r["child_pid"] for r in project.fake.events("child")]
    assert children
    assert [g for g in groups if group_alive(g)] == []
    assert [c for c in children if pid_alive(c)] == []
    # hints name dag as it was called: here `python -m dagspec` (console.dag_command)
    assert dag_command(str(ROOT / "dagspec" / "__main__.py")) + " resume r\n" in out
    assert "stopping: waiting up to 10 s for 2 agents (Ctrl-C again to kill them now)" in out


def test_a_second_driver_of_the_same_run_is_refused_naming_the_first(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    project.fake.setenv("HANG_AT", "plan")
    project.fake.setenv("RELEASE_FILE", str(release))
    project.write_dag(dag_text("a"))
    driver = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r", "--no-merge")
    try:
        wait_for(lambda: project.fake.events("hang"), timeout=20, what="hang")
        assert run_cli("resume", "r") == 1
        assert f"being driven by process {driver.pid}" in capsys.readouterr().err
        assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
        assert f"being driven by process {driver.pid}" in capsys.readouterr().err
    finally:
        release.touch()
        driver.communicate(timeout=30)
    assert driver.returncode == 0


def test_a_rerun_of_a_finished_run_id_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    assert run_cli("run", dag, "--run-id", "r") == 1
    assert "run 'r' exists already" in capsys.readouterr().err


def test_a_later_run_of_the_same_dag_continues_the_recorded_directory(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r1") == 0
    capsys.readouterr()
    assert run_cli("run", dag, "--run-id", "r2") == 0
    again = capsys.readouterr().out
    first = project.state("r1").spec("a").spec_dir
    assert project.state("r2").spec("a").spec_dir == first
    assert project.starts()[-1]["argv"][:3] == ["run", "-i", "--spec"]
    # The agent runs again, paid for: the run says so at its start, naming the earlier run.
    assert again.startswith(
        "run r2: 1 spec, one at a time\n"
        f"a goes on with {first}, which run r1 completed: autospec runs its implement stage "
        "again\n"
    )
    # Its branch brought nothing new: the total says what the row says.
    assert "  already merged  a\n" in again
    assert "(1 completed), 1 already merged, tasks" in again
    assert run_cli("run", dag, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"run -i --spec {Path(first or '').name} -y" in out
    assert f"goes on with {first}, which run r2 completed" in out


def test_many_specs_going_on_are_said_in_one_line(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = project.write_dag(dag_text("a", "b", "c", "d"))
    assert run_cli("run", dag, "--run-id", "r1") == 0
    capsys.readouterr()
    assert run_cli("run", dag, "--run-id", "r2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "4 specs go on with the spec directories run r1 completed (a, b, c, d): autospec runs "
        "their implement stage again"
    )
    assert "goes on" not in "\n".join(lines)


def test_a_feature_of_the_same_id_but_another_description_is_new_work(
    project: Project, run_cli: RunCli
) -> None:
    # Another DAG, or the same one edited: an id alone does not make it the same feature.
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r1") == 0
    other = project.write_dag(dag_text("a").replace('"Build a"', '"Billing with invoices"'))
    assert run_cli("run", other, "--run-id", "r2") == 0
    assert project.starts()[-1]["argv"][:2] == ["run", "-spti"]
    assert project.state("r2").spec("a").spec_dir != project.state("r1").spec("a").spec_dir


def test_output_is_streamed_to_the_log_whole(project: Project, run_cli: RunCli) -> None:
    project.fake.setenv("BAD_UTF8", "1")
    project.fake.setenv("ANSI", "1")
    project.fake.setenv("PARTIAL_LINE", "1")
    project.fake.setenv("STDERR_EVERY", "2")
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 0
    log = Path(project.state().spec("a").log or "").read_bytes()
    assert log.startswith(b"=== dagspec: attempt 1, ")
    assert b"Spec: specs/" in log
    assert project.state().spec("a").spec_dir is not None
