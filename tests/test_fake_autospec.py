"""The fake autospec keeps the real one's observable contract (docs/autospec-contract.md §6).

Real git repositories, real processes. Ordering is forced with gates, RELEASE_FILE and log
events, never with sleeps.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from strictyaml.ruamel import YAML

from tests.conftest import git
from tests.fake_autospec_fixture import FakeAutospec, make_autospec_project, wait_for

NAME = "001-hello-feature"
DESCRIPTION = "Add a hello feature"
SEPARATOR = "─" * 35 + " autospec " + "─" * 35
STAGE_LINE = re.compile(
    r"^\[(Stage|Phase) (\d+)/(\d+)\] "
    r"(constitution|specify|clarify|plan|tasks|checklist|analyze|implement)\.\.\.$",
    re.MULTILINE,
)
FAILED = "Error: executing stage {0}: {0} stage failed: "
EXHAUSTED = "retry limit exhausted: command execution failed: exit status 1"


@dataclass(frozen=True)
class Result:
    """One finished run of the fake: exit code, raw stdout, decoded stdout and stderr."""

    code: int
    raw: bytes
    out: str
    err: str


def autospec(*args: str, cwd: Path | None = None) -> Result:
    done = subprocess.run(
        ["autospec", *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    out, err = (stream.decode("utf-8", "replace") for stream in (done.stdout, done.stderr))
    return Result(done.returncode, done.stdout, out, err)


def start(*args: str, cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    """The fake in the background, in its own session (as the orchestrator starts it)."""
    with output.open("wb") as sink:
        return subprocess.Popen(
            ["autospec", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def statuses(repo: Path, name: str = NAME) -> dict[str, str]:
    document = load_yaml(repo / "specs" / name / "tasks.yaml")
    return {task["id"]: task["status"] for phase in document["phases"] for task in phase["tasks"]}


def branch(repo: Path) -> str:
    return git(repo, "symbolic-ref", "--short", "HEAD").strip()


def add_worktree(repo: Path, name: str) -> Path:
    """A linked worktree on its own branch, with autospec's project files copied in."""
    path = repo.parent / name
    git(repo, "worktree", "add", "-q", "-b", f"dag/{name}", str(path), "main")
    make_autospec_project(path)
    return path


def assert_in_order(text: str, lines: list[str]) -> None:
    """Each of ``lines`` is a whole line of ``text``, in this order."""
    all_lines, position = text.splitlines(), 0
    for line in lines:
        assert line in all_lines[position:], f"{line!r} missing after line {position}"
        position = all_lines.index(line, position) + 1


@pytest.fixture
def project(git_repo: Path, fake_autospec: FakeAutospec) -> Path:
    """The git_repo with a constitution, and the fake on PATH."""
    make_autospec_project(git_repo)
    return git_repo


@pytest.fixture(scope="module")
def fake_module() -> ModuleType:
    """The fake's own functions, for the parts worth testing without a process."""
    path = Path(__file__).resolve().parent.parent / "fixtures" / "fake_autospec" / "autospec"
    loader = importlib.machinery.SourceFileLoader("fake_autospec_module", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up while being built
    loader.exec_module(module)
    return module


# --- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version(fake_autospec: FakeAutospec, args: list[str]) -> None:
    result = autospec(*args)
    assert (result.code, result.out, result.err) == (0, "autospec fake-0.10.4\n", "")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message", "usage"),
    [
        (["run", "-x"], "Error: unknown shorthand flag: 'x' in -x\n", True),
        (["run", "-sxp", "d"], "Error: unknown shorthand flag: 'x' in -sxp\n", True),
        (["run", "--foo"], "Error: unknown flag: --foo\n", True),
        (["run", "-p", "--spec"], "Error: flag needs an argument: --spec\n", True),
        (
            ["run", "-p", "--max-retries", "x"],
            'Error: invalid argument "x" for "--max-retries" flag: '
            'strconv.ParseInt: parsing "x": invalid syntax\n',
            True,
        ),
        (
            ["run", "-spti", "--auto-commit", "--no-auto-commit", "x"],
            "Error: if any flags in the group [auto-commit no-auto-commit] are set none of the "
            "others can be; [auto-commit no-auto-commit] were all set\n",
            True,
        ),
        (
            ["frobnicate"],
            'Error: unknown command "frobnicate" for "autospec"\n'
            "Run 'autospec --help' for usage.\n",
            False,
        ),
        (
            ["run", "-s"],
            "Error: feature description required when using specify stage (-s)\n\n"
            'Usage: autospec run -s "feature description"\n',
            False,
        ),
        (
            ["run", "a description"],
            "Error: no stages selected. Use -s/-p/-t/-i flags or -a for all stages\n\n"
            "Run 'autospec run --help' for usage\n",
            False,
        ),
    ],
)
def test_command_line_errors(project: Path, args: list[str], message: str, usage: bool) -> None:
    result = autospec(*args)
    assert (result.code, result.out) == (1, "")
    if usage:
        assert result.err.startswith(
            message + "Usage:\n  autospec run [feature-description] [flags]"
        )
    else:
        assert result.err == message


@pytest.mark.slow
def test_missing_constitution_is_refused(git_repo: Path, fake_autospec: FakeAutospec) -> None:
    result = autospec("run", "-spti", DESCRIPTION)
    assert result.code == 1
    assert result.err.startswith("\nError: Project constitution not found.\n\n")
    assert result.err.endswith(
        "to .autospec/memory/constitution.yaml\nError: constitution required\n"
    )
    assert not (git_repo / "specs").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "missing", "remedy"),
    [("-i", "tasks.yaml", "autospec tasks"), ("-ti", "plan.yaml", "autospec plan")],
)
def test_resume_without_its_artifact_is_refused(
    project: Path, flags: str, missing: str, remedy: str
) -> None:
    assert autospec("run", "-s", DESCRIPTION).code == 0
    result = autospec("run", flags, "--spec", NAME)
    assert result.code == 1
    assert (
        result.err
        == f"\nError: {missing} not found.\n\nRun '{remedy}' first to create this file.\n"
    )


def test_unknown_spec_is_refused(project: Path) -> None:
    result = autospec("run", "-i", "--spec", "099")
    assert result.code == 1
    assert result.err == (
        "Error: spec not found: 099\n\n"
        "Run 'autospec specify' to create a new spec or check the spec name\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "detected"),
    [
        (["--spec", NAME], ""),
        (["--spec=001"], ""),
        (["--spec", "hello-feature"], ""),
        ([], f"✓ Using spec: specs/{NAME} (via git branch)\n"),
    ],
)
def test_spec_resolution_and_dry_run(project: Path, args: list[str], detected: str) -> None:
    assert autospec("run", "-s", DESCRIPTION).code == 0
    result = autospec("run", "-p", "--dry-run", *args)
    assert result.code == 0, result.err
    assert result.out == detected + (
        "Dry Run Preview\n===============\n\nStages to execute: 1\n\nExecution order:\n"
        f"  1. plan\n\nTarget spec: specs/{NAME}/\n\n"
        "Artifacts that would be created/modified:\n  - specs/*/plan.yaml\n\n"
        "No changes made. Remove --dry-run to execute.\n"
    )
    assert not (project / "specs" / NAME / "plan.yaml").exists()


@pytest.mark.slow
def test_detection_falls_back_to_the_newest_spec(project: Path) -> None:
    assert autospec("run", "-s", DESCRIPTION).code == 0
    git(project, "checkout", "-q", "main")
    result = autospec("run", "-p", "--dry-run")
    assert result.out.startswith(f"✓ Using spec: specs/{NAME} (via fallback - most recent)\n")


def test_description_after_double_dash_and_full_workflow_prompts(
    project: Path, fake_autospec: FakeAutospec
) -> None:
    fake_autospec.setenv("TASKS", 1)
    result = autospec("run", "-spti", "-a", "--", "-v makes it verbose")
    assert result.code == 0, result.err
    assert_in_order(
        result.out,
        [
            'Executing: /autospec.specify "-v makes it verbose"',
            "Executing: /autospec.plan",  # -a: plan, tasks and implement get no description
            "Executing: /autospec.tasks",
        ],
    )
    assert (project / "specs" / "001-makes-verbose" / "spec.yaml").exists()


# --- the timeline -------------------------------------------------------------------------


@pytest.mark.slow
def test_full_run_in_the_main_checkout(project: Path, fake_autospec: FakeAutospec) -> None:
    result = autospec("run", "-spti", DESCRIPTION)

    assert result.code == 0, result.err
    stages = [m.group(0) for m in STAGE_LINE.finditer(result.out)]
    assert stages == [
        f"[Stage {i}/4] {s}..." for i, s in enumerate(("specify", "plan", "tasks", "implement"), 1)
    ]
    assert_in_order(
        result.out,
        [
            "[Stage 1/4] specify...",
            f'Executing: /autospec.specify "{DESCRIPTION}"',
            SEPARATOR,
            f"✓ Created specs/{NAME}/spec.yaml (schema valid)",
            "Next: autospec plan",
            f'Executing: /autospec.plan "{DESCRIPTION}"',
            f"✓ Created specs/{NAME}/plan.yaml (schema valid)",
            "Next: autospec tasks",
            f"✓ Created specs/{NAME}/tasks.yaml (schema valid)",
            "Next: autospec implement",
            "[Stage 4/4] implement...",
            "[Phase 1/3] Setup",
            "  -> 2 tasks: T001, T002",
            "  -> Status: 0 completed, 0 blocked, 2 pending",
            "Executing: autospec.implement --phase 1",
            "Phase 1 complete (2/2 tasks completed)",
            "[Phase 2/3] User Story 1 (US-001)",
            "[Phase 3/3] Polish",
            "Phase 3 complete (2/2 tasks completed)",
        ],
    )
    summary = "Task Summary:\n  6/6 tasks completed (100%)\n  3/3 task phases completed\n"
    assert result.out.endswith(
        f"✓ All phases completed!\n\n{summary}Updated spec.yaml: Draft → Completed\n\n{summary}\n"
        f"Completed 4 workflow stage(s): specify → plan → tasks → implement\nSpec: specs/{NAME}/\n"
    )
    assert "Error:" not in result.err
    assert result.err.count("Warning: .gitignore not found.") == 3  # one per phase
    assert branch(project) == NAME  # v0.10.x in the main checkout: switched, silently
    assert "Switched to a new branch" not in result.out
    assert sorted(p.name for p in (project / "fake_impl" / NAME).iterdir()) == [
        f"T00{i}.txt" for i in range(1, 7)
    ]
    assert not list((project / ".autospec" / "context").iterdir())  # removed after each phase


@pytest.mark.slow
def test_artifacts_are_realistic(project: Path) -> None:
    assert autospec("run", "-spti", DESCRIPTION).code == 0
    directory = project / "specs" / NAME
    spec, plan = load_yaml(directory / "spec.yaml"), load_yaml(directory / "plan.yaml")
    assert spec["feature"]["status"] == "Completed" and spec["feature"]["completed_at"]
    assert spec["feature"]["input"] == DESCRIPTION and spec["user_stories"][0]["id"] == "US-001"
    assert plan["plan"]["spec_path"] == f"specs/{NAME}/spec.yaml" and plan["technical_context"]
    text = (directory / "tasks.yaml").read_text()
    assert "\n    - number: 1\n" in text  # re-marshalled by update-task: 4-space indentation
    tasks = load_yaml(directory / "tasks.yaml")
    assert tasks["summary"]["total_tasks"] == 6
    for phase in tasks["phases"]:
        ids = [task["id"] for task in phase["tasks"]]
        assert [task["dependencies"] for task in phase["tasks"]] == [[], *([i] for i in ids[:-1])]
        for task in phase["tasks"]:
            assert task["status"] == "Completed" and isinstance(task["parallel"], bool)
            assert task["type"] in ("setup", "implementation", "test", "documentation", "refactor")


@pytest.mark.slow
def test_log_records_the_run(project: Path, fake_autospec: FakeAutospec) -> None:
    fake_autospec.setenv("TASKS", 2)
    fake_autospec.setenv("PHASES", 1)
    assert autospec("run", "-spti", DESCRIPTION).code == 0
    start, *_, end = fake_autospec.events()
    assert (start["event"], start["argv"], start["cwd"]) == (
        "start",
        ["run", "-spti", DESCRIPTION],
        str(project),
    )
    assert (end["event"], end["code"], end["spec"], end["description"]) == (
        "exit",
        0,
        NAME,
        DESCRIPTION,
    )
    assert [e["stage"] for e in fake_autospec.events("stage_start")] == [
        "specify",
        "plan",
        "tasks",
        "implement",
    ]
    transitions = [(e["task"], e["old"], e["new"]) for e in fake_autospec.events("task", spec=NAME)]
    assert transitions == [
        ("T001", "Pending", "InProgress"),
        ("T001", "InProgress", "Completed"),
        ("T002", "Pending", "InProgress"),
        ("T002", "InProgress", "Completed"),
    ]
    assert {e["pid"] for e in fake_autospec.events()} == {start["pid"]}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "mode", "switched", "stdout_line", "stderr_line"),
    [
        ("main", "never", False, None, None),
        ("linked", "auto", False, None, "[specify] Warning: getting HEAD: reference not found"),
        ("linked", "always", True, f"Switched to a new branch '{NAME}'", None),
    ],
)
def test_branch_modes(
    project: Path,
    fake_autospec: FakeAutospec,
    where: str,
    mode: str,
    switched: bool,
    stdout_line: str | None,
    stderr_line: str | None,
) -> None:
    cwd = add_worktree(project, "wt") if where == "linked" else project
    before = branch(cwd)
    fake_autospec.setenv("BRANCH", mode)
    result = autospec("run", "-s", DESCRIPTION, cwd=cwd)
    assert result.code == 0, result.err
    assert branch(cwd) == (NAME if switched else before)
    assert (stdout_line in result.out.splitlines()) if stdout_line else "Switched" not in result.out
    assert (
        (stderr_line in result.err.splitlines()) if stderr_line else "[specify]" not in result.err
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("forced", "expected"),
    [
        ("", "008-user-authentication-email"),
        ("042-forced", "042-forced"),
        ("042", "042-user-authentication-email"),
        ("My Name", "008-my-name"),
    ],
)
def test_numbering_counts_spec_dirs_and_branches(
    project: Path, fake_autospec: FakeAutospec, forced: str, expected: str
) -> None:
    (project / "specs" / "003-older").mkdir(parents=True)
    git(project, "branch", "007-oldest")
    if forced:
        fake_autospec.setenv("SPEC_NAME", forced)
    result = autospec("run", "-s", "Add user authentication with email", "--no-auto-commit")
    assert result.code == 0, result.err
    assert f"✓ Created specs/{expected}/spec.yaml (schema valid)" in result.out.splitlines()
    assert (project / "specs" / expected / "spec.yaml").exists()


@pytest.mark.parametrize(
    ("description", "name"),
    [
        ("Add a hello feature", "hello-feature"),
        ("Add user authentication with email/password", "user-authentication-email-password"),
        ("Implement OAuth2 login for the API gateway service", "implement-oauth2-login"),
        ("Fix UI bug", "fix-ui-bug"),
        ("Do it", "do-it"),
    ],
)
def test_short_name_follows_new_feature(
    fake_module: ModuleType, description: str, name: str
) -> None:
    assert fake_module.short_name(description) == name


# --- resuming -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prepare", "resume", "stages"),
    [
        ("-s", "-pti", ["plan", "tasks", "implement"]),
        ("-sp", "-ti", ["tasks", "implement"]),
        ("-spt", "-i", ["implement"]),
    ],
)
def test_resume_forms(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_autospec: FakeAutospec,
    prepare: str,
    resume: str,
    stages: list[str],
) -> None:
    fake_autospec.setenv("TASKS", 2)
    fake_autospec.setenv("PHASES", 1)
    assert autospec("run", prepare, DESCRIPTION).code == 0
    monkeypatch.setenv("SPECIFY_FEATURE", NAME)
    result = autospec("run", resume, "--spec", NAME)
    assert result.code == 0, result.err
    total = len(stages)
    banners = [m.group(0) for m in STAGE_LINE.finditer(result.out)]
    assert banners == [f"[Stage {i}/{total}] {stage}..." for i, stage in enumerate(stages, 1)]
    assert result.out.endswith(
        f"Completed {total} workflow stage(s): {' → '.join(stages)}\nSpec: specs/{NAME}/\n"
    )
    assert set(statuses(project).values()) == {"Completed"}


@pytest.mark.slow
def test_implement_resumes_at_the_first_unfinished_phase(
    project: Path, monkeypatch: pytest.MonkeyPatch, fake_autospec: FakeAutospec
) -> None:
    fake_autospec.setenv("FAIL_AT", "implement:T004")
    failed = autospec("run", "-spti", DESCRIPTION)
    assert failed.code == 1
    assert failed.err.splitlines()[-1] == FAILED.format("implement") + (
        f"executing phase 2: phase 2 failed: phase 2 exhausted retries: {EXHAUSTED}"
    )
    assert list(statuses(project).values()) == ["Completed"] * 3 + ["InProgress"] + ["Pending"] * 2

    monkeypatch.delenv("FAKE_AUTOSPEC_FAIL_AT")
    monkeypatch.setenv("SPECIFY_FEATURE", NAME)
    resumed = autospec("run", "-i", "--spec", NAME)
    assert resumed.code == 0, resumed.err
    assert (
        "[Stage 1/1] implement...\nPhases 1-1 complete, starting from phase 2\n"
        "[Phase 2/3] User Story 1 (US-001)\n  -> 2 tasks: T003, T004\n"
        "  -> Status: 1 completed, 0 blocked, 1 pending\n"
    ) in resumed.out
    assert (
        "[Phase 1/3]" not in resumed.out and "Updated spec.yaml: Draft → Completed" in resumed.out
    )
    assert set(statuses(project).values()) == {"Completed"}

    again = autospec("run", "-i", "--spec", NAME)
    assert "[Stage 1/1] implement...\n✓ All phases already complete!\n" in again.out
    assert "[Phase" not in again.out and "Updated spec.yaml" not in again.out


@pytest.mark.slow
def test_spec_flag_without_specify_feature_misleads_the_agent(
    project: Path, monkeypatch: pytest.MonkeyPatch, fake_autospec: FakeAutospec
) -> None:
    """Contract §1.6: prompts follow SPECIFY_FEATURE, else the branch, never ``--spec``."""
    assert autospec("run", "-s", "Add alpha widget").code == 0
    git(project, "checkout", "-q", "main")
    assert autospec("run", "-s", "Add beta gadget").code == 0  # now on branch 002-beta-gadget
    alpha, beta = project / "specs" / "001-alpha-widget", project / "specs" / "002-beta-gadget"

    misled = autospec("run", "-p", "--spec", alpha.name)
    assert misled.code == 1
    assert misled.err.endswith(
        f"validation failed and retry exhausted: plan.yaml not found in specs/{alpha.name}\n"
    )
    assert (beta / "plan.yaml").exists() and not (alpha / "plan.yaml").exists()
    assert fake_autospec.events("prompt_dir_mismatch")[0]["agent_spec"] == beta.name

    monkeypatch.setenv("SPECIFY_FEATURE", alpha.name)
    assert autospec("run", "-p", "--spec", alpha.name).code == 0
    assert (alpha / "plan.yaml").exists()


@pytest.mark.slow
def test_implement_skips_finished_phases(project: Path) -> None:
    assert autospec("run", "-spti", DESCRIPTION).code == 0
    tasks = project / "specs" / NAME / "tasks.yaml"
    text = tasks.read_text()
    reopened = re.sub(r"(id: T003\n(?:.*\n)*?\s+status: )Completed", r"\1Pending", text, count=1)
    tasks.write_text(reopened)
    result = autospec("run", "-i", "--spec", NAME)
    assert result.code == 0, result.err
    assert_in_order(
        result.out,
        [
            "Phases 1-1 complete, starting from phase 2",
            "  -> Status: 1 completed, 0 blocked, 1 pending",
            "Phase 2 complete (2/2 tasks completed)",
            "  -> All 2 tasks in phase 3 already completed, skipping execution",
            "✓ All phases completed!",
        ],
    )


# --- fault injection ----------------------------------------------------------------------

TIMEOUT = (
    "retry limit exhausted: command timed out after 40m0s: "
    "claude -p (hint: increase timeout in config)"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fail_at", "kind", "error", "present", "absent"),
    [
        (
            "specify",
            "exit",
            FAILED.format("specify")
            + f"specify failed after 1 total attempts (0 retries): {EXHAUSTED}\n",
            [f"specs/{NAME}"],
            [f"specs/{NAME}/spec.yaml"],
        ),
        (
            "plan",
            "exit",
            FAILED.format("plan")
            + "executing plan stage: plan stage exhausted retries after 1 total attempts: "
            + f"{EXHAUSTED}\n",
            [f"specs/{NAME}/spec.yaml"],
            [f"specs/{NAME}/plan.yaml"],
        ),
        (
            "plan",
            "validation",
            FAILED.format("plan")
            + "executing plan stage: plan stage exhausted retries after 1 total "
            "attempts: validation failed and retry exhausted: "
            "schema validation failed for plan.yaml:\n"
            "- line 1: summary: missing required field: summary\n"
            "- line 1: technical_context: missing required field: technical_context\n"
            "- line 2: spec_path: missing required field: spec_path\n\n",
            [f"specs/{NAME}/plan.yaml"],
            [f"specs/{NAME}/tasks.yaml"],
        ),
        (
            "tasks",
            "timeout",
            FAILED.format("tasks")
            + "executing tasks stage: tasks stage exhausted retries after 1 total attempts: "
            + f"{TIMEOUT}\n",
            [f"specs/{NAME}/plan.yaml"],
            [f"specs/{NAME}/tasks.yaml"],
        ),
        (
            "implement:phase2",
            "incomplete-phase",
            FAILED.format("implement")
            + "executing phase 2: phase 2 failed: phase 2 exhausted retries: "
            "validation failed and retry exhausted: phase 2 has incomplete tasks\n",
            [f"fake_impl/{NAME}/T002.txt"],
            [f"fake_impl/{NAME}/T003.txt"],
        ),
    ],
)
def test_fault_kinds(
    project: Path,
    fake_autospec: FakeAutospec,
    fail_at: str,
    kind: str,
    error: str,
    present: list[str],
    absent: list[str],
) -> None:
    fake_autospec.setenv("FAIL_AT", fail_at)
    fake_autospec.setenv("FAIL_KIND", kind)
    fake_autospec.setenv("TASKS", 4)
    fake_autospec.setenv("PHASES", 2)
    result = autospec("run", "-spti", DESCRIPTION)
    assert result.code == 1
    assert result.err.endswith(error)
    assert result.out.endswith(SEPARATOR + "\n") or kind == "incomplete-phase"
    assert all((project / path).exists() for path in present)
    assert not any((project / path).exists() for path in absent)
    assert fake_autospec.events("exit")[0]["code"] == 1
    assert [e["kind"] for e in fake_autospec.events("fail")] == [kind]


@pytest.mark.slow
def test_incomplete_phase_leaves_tasks_pending(project: Path, fake_autospec: FakeAutospec) -> None:
    fake_autospec.setenv("FAIL_AT", "implement:T003")
    fake_autospec.setenv("FAIL_KIND", "incomplete-phase")
    result = autospec("run", "-spti", DESCRIPTION)
    assert result.code == 1
    assert result.out.endswith(
        f"{SEPARATOR}\n⚠ Phase 2 has incomplete tasks. "
        "Run 'autospec implement --phase 2' to continue.\n"
        "\nPhase 2 paused.\nTo resume: autospec implement --phase 2\n"
    )
    assert list(statuses(project).values()) == ["Completed"] * 2 + ["Pending"] * 4


@pytest.mark.slow
def test_validation_is_retried(project: Path, fake_autospec: FakeAutospec) -> None:
    fake_autospec.setenv("FAIL_AT", "plan")
    fake_autospec.setenv("FAIL_KIND", "validation")
    result = autospec("run", "-spti", DESCRIPTION, "--max-retries", "1")
    assert result.code == 1
    assert "⟳ Retry 1/1 - injecting validation errors into command" in result.out.splitlines()
    assert "plan stage exhausted retries after 2 total attempts: validation failed" in result.err


@pytest.mark.slow
def test_hang_is_released_by_the_release_file(
    project: Path, fake_autospec: FakeAutospec, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    fake_autospec.setenv("HANG_AT", "plan")
    fake_autospec.setenv("RELEASE_FILE", str(release))
    process = start("run", "-spti", DESCRIPTION, cwd=project, output=tmp_path / "out")
    fake_autospec.wait_event("hang", at="plan")
    assert (project / "specs" / NAME / "spec.yaml").exists()
    assert not (project / "specs" / NAME / "plan.yaml").exists()
    assert process.poll() is None
    release.touch()
    assert process.wait(timeout=30) == 0


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, -15), (signal.SIGINT, -2)])
def test_hang_dies_by_signal(
    project: Path, fake_autospec: FakeAutospec, tmp_path: Path, signum: int, code: int
) -> None:
    fake_autospec.setenv("HANG_AT", "specify")
    process = start("run", "-spti", DESCRIPTION, cwd=project, output=tmp_path / "out")
    fake_autospec.wait_event("hang")
    process.send_signal(signum)
    assert process.wait(timeout=30) == code
    assert not fake_autospec.events("exit")  # no cleanup, like Go


@pytest.mark.slow
def test_ignore_sigterm_survives_until_sigkill(
    project: Path, fake_autospec: FakeAutospec, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    for key, value in {
        "IGNORE_SIGTERM": "1",
        "HANG_AT": "plan",
        "RELEASE_FILE": str(release),
        "GATES": "tasks",
    }.items():
        fake_autospec.setenv(key, value)
    process = start("run", "-spti", DESCRIPTION, cwd=project, output=tmp_path / "out")
    fake_autospec.wait_event("hang", at="plan")
    process.send_signal(signal.SIGTERM)
    release.touch()
    fake_autospec.gate_dir.wait_waiting(NAME, "tasks")  # it went on after the SIGTERM
    assert process.poll() is None
    process.kill()
    assert process.wait(timeout=30) == -9


def process_group(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[2])


@pytest.mark.slow
def test_child_stays_in_the_process_group(
    project: Path, fake_autospec: FakeAutospec, tmp_path: Path
) -> None:
    fake_autospec.setenv("CHILD", "1")
    fake_autospec.setenv("GATES", "plan")
    process = start("run", "-spti", DESCRIPTION, cwd=project, output=tmp_path / "out")
    fake_autospec.gate_dir.wait_waiting(NAME, "plan")
    (child,) = [event["child_pid"] for event in fake_autospec.events("child")]
    assert process_group(child) == process.pid
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -9
    wait_for(lambda: process_group(child) is None, timeout=10, what=f"child {child} to die")


@pytest.mark.slow
def test_gates_step_the_run(project: Path, fake_autospec: FakeAutospec, tmp_path: Path) -> None:
    gates = fake_autospec.gate_dir
    fake_autospec.setenv("GATES", "specify,plan,tasks,T003,exit")
    output = tmp_path / "out"
    process = start("run", "-spti", DESCRIPTION, cwd=project, output=output)
    specs = project / "specs" / NAME

    assert gates.wait_any("specify") == str(process.pid)  # the spec's name is not known yet
    assert gates.wait_waiting(process.pid, "specify")["pid"] == process.pid
    assert not (project / "specs").exists()
    gates.release(process.pid, "specify")

    gates.wait_waiting(NAME, "plan")
    assert (specs / "spec.yaml").exists() and not (specs / "plan.yaml").exists()
    assert f"✓ Created specs/{NAME}/spec.yaml (schema valid)\n" in output.read_text()
    gates.release(NAME, "plan")

    gates.wait_waiting(NAME, "tasks")
    assert (specs / "plan.yaml").exists() and not (specs / "tasks.yaml").exists()
    gates.release(NAME, "tasks")

    gates.wait_waiting(NAME, "T003")
    assert list(statuses(project).values()) == ["Completed"] * 2 + ["Pending"] * 4
    assert sorted(p.name for p in (project / "fake_impl" / NAME).iterdir()) == [
        "T001.txt",
        "T002.txt",
    ]
    gates.release(NAME, "T003")

    gates.wait_waiting(NAME, "exit")
    assert output.read_text().endswith(f"Spec: specs/{NAME}/\n") and process.poll() is None
    gates.release(NAME, "exit")
    assert process.wait(timeout=30) == 0
    assert not list(gates.path.iterdir())


@pytest.mark.slow
def test_torn_writes(project: Path, fake_autospec: FakeAutospec, tmp_path: Path) -> None:
    fake_autospec.setenv("TORN_WRITES", "1")
    fake_autospec.setenv("TASKS", 2)
    fake_autospec.setenv("PHASES", 1)
    fake_autospec.control([{"GATES": "torn"}])
    process = start("run", "-spti", DESCRIPTION, cwd=project, output=tmp_path / "out")
    fake_autospec.gate_dir.wait_waiting(NAME, "torn")
    half = fake_autospec.events("tasks_write_part")[-1]
    seen = (project / "specs" / NAME / "tasks.yaml").read_bytes()
    assert len(seen) == half["written"] < half["total"]  # a reader now sees half a file

    fake_autospec.control([])  # no more gates: the rules are re-read before every step
    fake_autospec.gate_dir.release(NAME, "torn")
    assert process.wait(timeout=30) == 0
    assert set(statuses(project).values()) == {"Completed"}  # the final file is whole
    writes = fake_autospec.events("tasks_write")
    assert len(writes) == 4 and all(w["torn"] for w in writes)
    assert len(fake_autospec.events("tasks_write_part")) == 4


def test_odd_output(project: Path, fake_autospec: FakeAutospec) -> None:
    knobs = {
        "OUTPUT_LINES": 4,
        "LINE_BYTES": 3000,
        "STDERR_EVERY": 2,
        "ANSI": 1,
        "BAD_UTF8": 1,
        "PARTIAL_LINE": 1,
        "TASKS": 1,
        "PHASES": 1,
    }
    for key, value in knobs.items():
        fake_autospec.setenv(key, value)
    result = autospec("run", "-spti", DESCRIPTION)
    assert result.code == 0, result.err
    assert b"\xff\xfe" in result.raw and b"\x1b[" in result.raw
    assert result.raw.endswith(f"Spec: specs/{NAME}/".encode())  # no final newline
    assert max(len(line) for line in result.raw.split(b"\n")) >= 3000
    assert "[fake-agent] working on" in result.err
    assert len(STAGE_LINE.findall(result.out)) == 4 and result.out.count(f"\n{SEPARATOR}\n") == 4


@pytest.mark.slow
def test_megabytes_of_output(project: Path, fake_autospec: FakeAutospec) -> None:
    fake_autospec.setenv("OUTPUT_LINES", 12000)
    fake_autospec.setenv("LINE_BYTES", 100)
    result = autospec("run", "-s", DESCRIPTION)
    assert result.code == 0 and len(result.raw) > 1_000_000


@pytest.mark.slow
def test_touch_and_conflict_files(project: Path, fake_autospec: FakeAutospec) -> None:
    knobs: dict[str, str | int] = {
        "TOUCH": "shared/a.txt,b.txt",
        "CONFLICT": 1,
        "TASKS": 2,
        "PHASES": 2,
    }
    for key, value in knobs.items():
        fake_autospec.setenv(key, value)
    assert autospec("run", "-spti", DESCRIPTION).code == 0
    expected = f"{NAME} phase 1\n{NAME} phase 2\n"
    assert (project / "shared" / "a.txt").read_text() == (project / "b.txt").read_text() == expected
    assert (project / "CONFLICT.md").read_text().splitlines()[0] == NAME


# --- auto-commit --------------------------------------------------------------------------


@pytest.mark.slow
def test_auto_commit_commits_untracked_files(
    project: Path, fake_autospec: FakeAutospec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSPEC_AUTO_COMMIT", "true")
    fake_autospec.setenv("TASKS", 2)
    fake_autospec.setenv("PHASES", 2)
    (project / "stray.txt").write_text("not part of the spec\n")
    result = autospec("run", "-spti", DESCRIPTION)
    assert result.code == 0, result.err
    assert "[+AutoCommit]" in result.out
    subjects = git(project, "log", "--format=%s", "--reverse", "main..HEAD").splitlines()
    assert subjects == [
        f"docs(spec): add specification for {NAME}",
        f"docs(plan): add implementation plan for {NAME}",
        f"docs(tasks): add task breakdown for {NAME}",
        f"feat({NAME}): implement phase 1",
        f"feat({NAME}): implement phase 2",
    ]
    tracked = git(project, "ls-files").splitlines()
    assert "stray.txt" in tracked  # git add -A takes whatever lies around
    assert ".autospec/memory/constitution.yaml" in tracked
    assert [e["message"] for e in fake_autospec.events("commit")] == subjects


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "env", "config", "forced", "commits"),
    [
        (["--auto-commit"], None, None, None, 1),
        (["--no-auto-commit"], "true", None, None, 0),
        ([], "false", "true", None, 0),
        ([], None, "true", None, 1),
        (["-c", "alt.yml"], None, "true", None, 1),
        (["--no-auto-commit"], None, None, "always", 1),
        ([], "true", None, "never", 0),
    ],
)
def test_auto_commit_precedence(
    project: Path,
    fake_autospec: FakeAutospec,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    env: str | None,
    config: str | None,
    forced: str | None,
    commits: int,
) -> None:
    if env is not None:
        monkeypatch.setenv("AUTOSPEC_AUTO_COMMIT", env)
    if config is not None:
        path = project / (flags[1] if flags[:1] == ["-c"] else ".autospec/config.yml")
        path.write_text(f"auto_commit: {config}  # from the project\n")
    if forced is not None:
        fake_autospec.setenv("COMMIT", forced)
    result = autospec("run", "-s", DESCRIPTION, *flags)
    assert result.code == 0, result.err
    assert int(git(project, "rev-list", "--count", "main..HEAD")) == commits
    assert ("[+AutoCommit]" in result.out) == bool(commits)


# --- control file and parallel runs -------------------------------------------------------


@pytest.mark.slow
def test_control_rules_target_one_spec(project: Path, fake_autospec: FakeAutospec) -> None:
    fake_autospec.setenv("TASKS", 1)
    fake_autospec.control(
        [
            {"match": "beta", "FAIL_AT": "plan"},
            {
                "match": "hello-feature$",
                "FAIL_AT": "tasks",
            },  # the spec dir name, not the description
        ]
    )
    alpha = autospec("run", "-spti", "Add alpha widget", cwd=add_worktree(project, "wt-alpha"))
    beta = autospec("run", "-spti", "Add beta gadget", cwd=add_worktree(project, "wt-beta"))
    hello = autospec("run", "-spti", DESCRIPTION, cwd=add_worktree(project, "wt-hello"))
    assert alpha.code == 0, alpha.err
    assert beta.code == 1 and beta.err.splitlines()[-1].startswith(FAILED.format("plan"))
    assert hello.code == 1 and hello.err.splitlines()[-1].startswith(FAILED.format("tasks"))
    failures = {(e["spec"], e["stage"]) for e in fake_autospec.events("fail")}
    assert failures == {("001-beta-gadget", "plan"), (NAME, "tasks")}


def test_control_rules_merge_in_order(
    fake_module: ModuleType, fake_autospec: FakeAutospec, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_autospec.setenv("TASKS", 6)
    fake_autospec.setenv("OUTPUT_LINES", 9)
    fake_autospec.control(
        [
            {"TASKS": 2},
            {"match": "beta", "TASKS": 3, "ANSI": True, "GATES": ["plan", "T001"]},
            {"match": "^001-beta", "OUTPUT_LINES": None},
        ]
    )
    alpha = fake_module.knobs(SimpleNamespace(description="Add alpha", spec=None))
    beta = fake_module.knobs(SimpleNamespace(description="", spec="001-beta-gadget"))
    assert (alpha["TASKS"], alpha["OUTPUT_LINES"], "ANSI" in alpha) == ("2", "9", False)
    assert (beta["TASKS"], beta["ANSI"], beta["GATES"], "OUTPUT_LINES" in beta) == (
        "3",
        "1",
        "plan,T001",
        False,
    )


@pytest.mark.slow
def test_three_copies_in_three_worktrees(
    project: Path, fake_autospec: FakeAutospec, tmp_path: Path
) -> None:
    fake_autospec.setenv("STEP_SECONDS", "0.005")
    words = ("alpha widget", "beta gadget", "gamma gizmo")
    worktrees = [add_worktree(project, f"wt-{i}") for i in range(3)]
    processes = [
        start("run", "-spti", f"Add {w}", cwd=wt, output=tmp_path / f"out-{i}")
        for i, (w, wt) in enumerate(zip(words, worktrees, strict=True))
    ]
    assert [p.wait(timeout=60) for p in processes] == [0, 0, 0]
    for words_, worktree in zip(words, worktrees, strict=True):
        name = "001-" + words_.replace(" ", "-")  # v0.10.x in linked worktrees: all pick 001
        assert [p.name for p in (worktree / "specs").iterdir()] == [name]
        assert [p.name for p in (worktree / "fake_impl").iterdir()] == [name]
        assert set(statuses(worktree, name).values()) == {"Completed"}
        assert fake_autospec.events("exit", spec=name)[0]["code"] == 0
    assert not (project / "specs").exists()


# --- the fake's little YAML ---------------------------------------------------------------

SAMPLE = """\
# a comment
tasks: {branch: "004-user-auth", created: "2026-01-30"}   # trailing comment
summary: |
  Line one
  line two: with a colon
folded: >-
  folded
  text
"quoted key": 'it''s'
phases:
  - number: 1
    title: Login (US-001)
    tasks:
      - {id: "T001", status: "Completed", dependencies: [], story_id: null, parallel: true}
      - id: T002
        notes: a plain scalar
          that continues
        dependencies:
        - T001
  - number: 2
    tasks: []
multi: [a, "b, c",
  {k: v}]
empty:
"""


def test_yaml_reader_agrees_with_ruamel(fake_module: ModuleType) -> None:
    assert fake_module.parse_yaml(SAMPLE) == YAML(typ="safe", pure=True).load(SAMPLE)


def test_yaml_round_trip(fake_module: ModuleType) -> None:
    document = {
        "a": {"b": [1, 2.5, True, None, "x: y", "#hash", "ünï", "line\nbreak", "", "null", "007"]},
        "flow": fake_module.Flow(id="T001", deps=[], nested={"k": "v"}),
        "list": [{"k": [{"deep": "yes"}], "e": {}}, [1, [2]], "tail"],
    }
    for indent, quote in ((2, True), (4, False)):
        text = fake_module.dump_yaml(document, indent=indent, quote=quote)
        assert fake_module.parse_yaml(text) == YAML(typ="safe", pure=True).load(text) == document
