"""The autospec contract as dagspec reads it: commands for resume points, banners, tasks.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagspec import autospec
from dagspec.autospec import PhaseSeen, SpecDirSeen, StageSeen, TaskStats
from dagspec.errors import DagspecError


@pytest.mark.parametrize(
    ("present", "stage"),
    [
        ((), "specify"),
        (("spec.yaml",), "plan"),
        (("spec.yaml", "plan.yaml"), "tasks"),
        (("spec.yaml", "plan.yaml", "tasks.yaml"), "implement"),
        (("plan.yaml",), "specify"),
    ],
)
def test_first_missing_stage(present: tuple[str, ...], stage: str) -> None:
    assert autospec.first_missing_stage(present) == stage


def test_artifacts_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("x")
    (tmp_path / "notes.md").write_text("x")
    assert autospec.artifacts_in(tmp_path) == {"spec.yaml"}
    assert autospec.artifacts_in(tmp_path / "missing") == frozenset()


def test_a_new_spec_is_specified_with_its_description() -> None:
    call = autospec.invocation("autospec", description="Add auth", spec_dir=None, present=())
    assert call.argv == ("autospec", "run", "-spti", "-y", "Add auth")
    assert call.env == {}
    assert call.stage == "specify"


def test_a_description_starting_with_a_dash_follows_a_double_dash() -> None:
    call = autospec.invocation("as", description="-v mode", spec_dir=None, present=())
    assert call.argv == ("as", "run", "-spti", "-y", "--", "-v mode")


@pytest.mark.parametrize(
    ("present", "flag"),
    [
        (("spec.yaml",), "-pti"),
        (("spec.yaml", "plan.yaml"), "-ti"),
        (("spec.yaml", "plan.yaml", "tasks.yaml"), "-i"),
    ],
)
def test_a_spec_with_artifacts_resumes_with_spec_and_specify_feature(
    present: tuple[str, ...], flag: str
) -> None:
    call = autospec.invocation("as", description="d", spec_dir="004-auth", present=present)
    assert call.argv == ("as", "run", flag, "--spec", "004-auth", "-y")
    assert call.env == {"SPECIFY_FEATURE": "004-auth"}


def test_a_spec_dir_without_spec_yaml_is_specified_again() -> None:
    call = autospec.invocation("as", description="d", spec_dir="004-auth", present=())
    assert call.argv == ("as", "run", "-spti", "-y", "d")


def test_without_description_or_spec_yaml_there_is_nothing_to_run() -> None:
    with pytest.raises(DagspecError, match=r"no specs/004-auth/spec\.yaml"):
        autospec.invocation("as", description=None, spec_dir="004-auth", present=())


def test_the_shell_form_quotes_what_needs_it() -> None:
    call = autospec.invocation("as", description="it's", spec_dir="0 x", present=["spec.yaml"])
    assert call.shell() == "SPECIFY_FEATURE='0 x' as run -pti --spec '0 x' -y"


@pytest.mark.parametrize(
    ("line", "banner"),
    [
        (b"[Stage 1/4] specify...", StageSeen("specify")),
        (b"[Stage 4/4] implement...\r\n", StageSeen("implement")),
        (b"[Phase 2/4] plan...", StageSeen("plan")),  # autospec <= v0.3
        (b"[Phase 1/3] Setup", PhaseSeen(1, 3, "Setup")),
        (
            b"\xe2\x9c\x93 Created specs/004-user-auth/spec.yaml (schema valid)",
            SpecDirSeen("004-user-auth"),
        ),
        (b"Spec: specs/004-user-auth/", SpecDirSeen("004-user-auth")),
        (b"\x1b[32m[Stage 3/4] tasks...\x1b[0m", StageSeen("tasks")),
        (b"\xff\xfe[Stage 3/4] tasks...", None),
        (b"Executing: /autospec.plan", None),
        (b"[Stage 1/4] lunch...", None),
        (b"", None),
    ],
)
def test_banners(line: bytes, banner: object) -> None:
    assert autospec.parse_banner(autospec.plain(line)) == banner


def test_invalid_utf8_is_tolerated() -> None:
    assert autospec.plain(b"ok \xff\xfe done\n") == "ok \ufffd\ufffd done"


TASKS = """\
tasks: {branch: "004-user-auth", spec_path: "specs/004-user-auth/spec.yaml"}
summary: {total_tasks: 5, total_phases: 2}
phases:
  - number: 1
    title: "Setup"
    tasks:
      - {id: "T001", title: "a", status: "Completed"}
      - {id: "T002", title: "b", status: "done"}
  - number: 2
    title: "Login"
    tasks:
      - {id: "T003", title: "c", status: "InProgress"}
      - {id: "T004", title: "d", status: "Blocked"}
      - {id: "T005", title: "e", status: "Pending"}
_meta: {artifact_type: "tasks"}
"""


def test_tasks_are_counted_as_autospec_does() -> None:
    assert autospec.parse_tasks(TASKS) == TaskStats(done=2, in_progress=1, blocked=1, pending=1)
    assert autospec.parse_tasks(TASKS).total == 5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("statuses", "stats"),
    [
        (["COMPLETED", "Complete", "DONE"], TaskStats(done=3)),
        (["in_progress", "InProgress", "in-progress", "WIP"], TaskStats(in_progress=4)),
        (["blocked", "Blocked"], TaskStats(blocked=2)),
        (["Pending", "", "later"], TaskStats(pending=3)),
    ],
)
def test_status_words(statuses: list[str], stats: TaskStats) -> None:
    assert autospec.count_statuses(statuses) == stats


@pytest.mark.parametrize(
    "text",
    ["", "\n", "phases: [", "phases: nope\n", "- a list\n", TASKS[: TASKS.index("  - number: 2")]],
)
def test_a_file_being_rewritten_is_not_trusted(text: str) -> None:
    assert autospec.parse_tasks(text) is None


@pytest.mark.slow
def test_every_cut_of_a_file_is_rejected_or_counts_no_more_than_the_whole() -> None:
    whole = autospec.parse_tasks(TASKS)
    assert whole is not None
    for end in range(len(TASKS)):
        stats = autospec.parse_tasks(TASKS[:end])
        assert stats is None or (stats.total == 5 and stats.done <= whole.done)


def test_fewer_tasks_than_declared_are_accepted_when_not_strict() -> None:
    cut = TASKS[: TASKS.index("  - number: 2")]
    assert autospec.parse_tasks(cut, strict=False) == TaskStats(done=2)


@pytest.mark.parametrize(
    ("said", "line"),
    [
        ("autospec fake-0.10.4\n", "autospec fake-0.10.4"),
        (
            "autospec version v0.7.3\nBuilt from commit: 1a2b\nGo version: go1.22\n",
            "autospec version v0.7.3",
        ),
        ("autospec version dev\n", "autospec version dev"),  # a build that names no version
        ("note: shim updated\nAutospec 0.10.4\n", "Autospec 0.10.4"),  # a wrapper's notice
        ("v0.10.4\n", "v0.10.4"),
        (  # a wrapper's update notice names autospec and the newer version first
            "A new release of autospec is available: v0.10.4 (you have v0.7.3)\n"
            "autospec version v0.7.3\n",
            "autospec version v0.7.3",
        ),
        ("\x1b[1;32mautospec version v0.10.4\x1b[0m\n", "autospec version v0.10.4"),
        ("", None),
        ("Usage: foo [options]\n", None),
        ("Python 3.11.7\n", None),  # a version, of something else
        ("git version 2.39.2\n", None),
        ("\ufffd\ufffd\x1b[31mgarb\x00age\n", None),
    ],
)
def test_the_version_line_is_the_one_naming_autospec(said: str, line: str | None) -> None:
    assert autospec.version_line(said) == line


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("autospec version v0.7.3", None),
        ("autospec fake-0.10.4", None),
        ("autospec version dev", None),  # a build that names no version
        ("autospec version 8c81903", None),  # built from a clone without tags: a commit
        ("autospec version dev (commit 8c81903)", None),
        ("autospec version v0.10.4 (commit 8c81903)", None),
        ("autospec version 1234567", "whose version '1234567' is not one"),  # no hex letter
        ("Autospec 0.10.4 (built 2026-01-15)", None),  # the first word with a digit counts
        ("autospec version v0.10.4-rc1+a1b2", None),
        ("autospec version v0.10.4-3-g1a2b3c", None),
        ("autospec 20260115.1.0", None),
        ("v0.10.4", None),
        ("autospec version v-1.0.0", "whose version 'v-1.0.0' is not one"),
        ("autospec version v12345678901234567890123.0.0", "whose version 'v1234567890"),
        ("autospec version 0.10.٤", "whose version '0.10.٤' is not one"),  # not an ASCII digit
        ("autospec version v0..4", "whose version 'v0..4' is not one"),
        ("autospec 7", "whose version '7' is not one"),
        ("autospec version v0.10.4\0", "which holds a control character"),
        ("autospec\tversion v0.10.4", "which holds a control character"),
        ("autospec version v0.10.\udcff4", "which is not UTF-8"),
        ("autospec version v0.10.4 " + "x" * 200, "which is longer than 200 characters"),
    ],
)
def test_a_version_line_is_read_strictly(line: str, problem: str | None) -> None:
    """What is recorded and compared (``spec_flag_works``) must be a version: a line read
    with ``surrogateescape``, its version the first word with a digit."""
    found = autospec.version_problem(line)
    assert found == problem if problem is None else (found or "").startswith(problem)
