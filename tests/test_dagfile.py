from __future__ import annotations

from pathlib import Path

import pytest

from dagspec.dagfile import CopyPath, load_dag
from dagspec.durations import parse_duration
from dagspec.errors import SpecError
from tests.conftest import FIXTURES

DAGS = FIXTURES / "dags"


def test_full_form_is_structured_with_defaults_and_effective_dependencies() -> None:
    dag = load_dag(DAGS / "example.yaml")
    assert dag.name == "Q1 Features"
    assert dag.execution.max_parallel == 4
    assert dag.execution.timeout == 7200
    assert [layer.id for layer in dag.layers] == ["L0", "L1"]
    auth = dag.features["060-user-auth"]
    assert auth.layer == "L1"
    assert auth.timeout == 45 * 60
    l0 = ("050-error-handling", "051-config-loading", "052-structured-logging")
    assert dag.deps["060-user-auth"] == l0
    assert dag.deps["061-rate-limiting"] == ("060-user-auth", *l0)
    assert dag.deps["052-structured-logging"] == ("050-error-handling",)


def test_short_form_takes_its_name_from_the_file() -> None:
    dag = load_dag(DAGS / "short-form.yaml")
    assert dag.name == "short-form"
    assert dag.schema_version == "1.0"
    assert dag.execution.max_parallel is None
    assert dag.deps["003-greeting-log"] == ("001-hello", "002-goodbye")


def test_block_and_flow_lists_are_the_same() -> None:
    assert load_dag(DAGS / "linear.yaml").deps["third"] == ("second",)


def test_the_model_is_frozen() -> None:
    dag = load_dag(DAGS / "diamond.yaml")
    with pytest.raises(AttributeError):
        dag.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("45m", 2700), ("2h", 7200), ("1h30m", 5400), ("1h0m5s", 3605)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "h", "1d", "-1h", "1.5h", "30m1h"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_every_problem_of_a_file_is_reported_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        "execution:\n"
        "  max_parallel: 0\n"
        "layers:\n"
        "  - id: L0\n"
        "    features:\n"
        "      - id: a\n"
        "        descripton: x\n"
        "      - id: b\n"
        "        description: y\n"
        "        depends_on: [zz]\n"
        "  - id: L1\n"
        "    features: []\n"
    )
    with pytest.raises(SpecError) as info:
        load_dag(path)
    assert [(p.line, p.message.split(":")[0]) for p in info.value.problems] == [
        (2, "max_parallel is 0"),
        (7, "unknown key 'descripton' in feature 'a' (did you mean 'description'?); allowed keys"),
        (10, "feature 'b' depends on 'zz', which is not defined"),
        (12, "layer 'L1' has no features"),
    ]


def test_a_dependency_on_a_damaged_feature_is_not_reported_twice(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        "layers:\n  - id: L0\n    features:\n"
        "      - id: a\n        color: red\n"
        "      - id: b\n        description: y\n        depends_on: [a]\n"
    )
    with pytest.raises(SpecError) as info:
        load_dag(path)
    assert len(info.value.problems) == 1
    assert "unknown key 'color'" in info.value.problems[0].message


def test_the_line_of_a_flow_list_item_is_its_own(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        "layers:\n  - id: L0\n    features:\n      - id: a\n        description: x\n"
        "      - id: b\n        description: y\n\n\n        depends_on: [a, nope]\n"
    )
    with pytest.raises(SpecError) as info:
        load_dag(path)
    assert info.value.problems[0].line == 10


def test_setup_copy_and_notify_are_read_into_the_execution(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        "execution:\n"
        '  setup: "npm ci"\n'
        '  notify: "notify-send dag"\n'
        "  copy:\n"
        "    - .env\n"
        '    - "./.vscode/"\n'
        "    - {path: node_modules, symlink: true}\n"
        "layers:\n"
        "  - id: L0\n"
        "    features: [{id: a, description: x}]\n"
    )
    execution = load_dag(path).execution
    assert execution.setup == "npm ci"
    assert execution.notify == "notify-send dag"
    assert execution.copy == (
        CopyPath(".env"),
        CopyPath(".vscode"),
        CopyPath("node_modules", symlink=True),
    )


def test_bad_setup_and_copy_entries_are_each_reported_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        "execution:\n"
        '  setup: "  "\n'
        "  copy:\n"
        "    - /etc/passwd\n"
        "    - ../x\n"
        "    - .git/config\n"
        "    - .env\n"
        "    - .env/\n"
        "    - {path: nm, symlink: maybe}\n"
        "    - {symlink: true}\n"
        "layers:\n"
        "  - id: L0\n"
        "    features: [{id: a, description: x}]\n"
    )
    with pytest.raises(SpecError) as caught:
        load_dag(path)
    assert [(p.line, p.message.split(":")[0]) for p in caught.value.problems] == [
        (2, "execution.setup is empty"),
        (4, "execution.copy path '/etc/passwd' is not relative"),
        (5, "execution.copy path '../x' contains '..'"),
        (6, "execution.copy path '.git/config' is inside .git"),
        (8, "execution.copy lists '.env' twice (first at line 7)"),
        (9, "'symlink' of the copy entry at line 9 should be true or false, found 'maybe'"),
        (10, "the copy entry at line 10 has no 'path'"),
    ]


def test_a_mapping_among_dependencies_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        "layers:\n  - id: L0\n    features:\n      - id: a\n        description: x\n"
        "      - id: b\n        description: y\n        depends_on:\n          - a:\n"
    )
    with pytest.raises(SpecError, match=r":8: 'depends_on' of feature 'b' should be a list"):
        load_dag(path)
