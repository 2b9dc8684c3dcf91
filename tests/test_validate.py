"""``dag validate``: every broken file gets one clear line, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagspec.cli import main
from tests.conftest import FIXTURES, ROOT, git
from tests.structural_mutants import BASES, mutant_texts, to_text

BAD = FIXTURES / "dags" / "bad"

# Each broken fixture, the line its error names (None: the whole file) and the message.
EXPECTED: dict[str, tuple[int | None, str]] = {
    "anchor-alias.yaml": (5, "anchors and aliases (& and *) are not allowed"),
    "bad-duration-unit.yaml": (6, "timeout of feature 'a' is '3d', not a duration"),
    "bad-duration.yaml": (
        2,
        "execution.timeout is '5', a number without its unit: write it like 5s",
    ),
    "binary-garbage.yaml": (1, "binary data (NUL bytes): not a DAG file"),
    "control-character.yaml": (5, "'description' of feature 'a' contains the control character"),
    "cycle-features.yaml": (4, "dependency cycle: a -> c -> b -> a"),
    "cycle-layers.yaml": (2, "layer dependency cycle: L0 -> L1 -> L0"),
    "cycle-through-layer.yaml": (4, "dependency cycle: a -> b -> layer L0 -> a"),
    "deep-flow-nesting.yaml": (None, "nested more than 64 levels deep: not a DAG file"),
    "deep-indentation.yaml": (None, "indented more than 256 columns: not a DAG file"),
    "duplicate-feature-id.yaml": (6, "duplicate feature id 'a' (first defined at line 4)"),
    "duplicate-key.yaml": (6, "duplicate key 'description' found: each key may appear once"),
    "duplicate-layer-id.yaml": (6, "duplicate layer id 'L0' (first defined at line 2)"),
    "empty-features.yaml": (3, "layer 'L0' has no features: add at least one"),
    "empty-layers.yaml": (1, "'layers' is empty: add at least one layer"),
    "empty.yaml": (None, "the file is empty: a DAG file needs at least a 'layers:' list"),
    "feature-depends-on-layer.yaml": (10, "feature 'b' depends on 'L0', which is a layer"),
    "feature-without-id.yaml": (4, "the feature at line 4 has no 'id': it is required"),
    "id-101-chars.yaml": (4, f"feature id '{'a' * 101}' is 101 characters long: at most 100"),
    "id-dotdot.yaml": (4, "feature id 'a..b' contains '..'"),
    "id-leading-dash.yaml": (4, "feature id '-a' is not valid: use letters, digits"),
    "id-lock-suffix.yaml": (4, "feature id 'a.lock' ends with '.' or '.lock'"),
    "id-slash.yaml": (4, "feature id 'a/b' is not valid"),
    "invalid-utf8.yaml": (3, "not valid UTF-8: save the file as UTF-8"),
    "layer-depends-on-feature.yaml": (7, "layer 'L1' depends on 'a', which is a feature"),
    "layers-not-a-list.yaml": (1, "'layers' of the file should be a list, found 'everything'"),
    "max-parallel-zero.yaml": (2, "max_parallel is 0: it must be 1 or more"),
    "merge-key.yaml": (2, "layer 'L0' uses a merge key ('<<:'): write its keys out instead"),
    "missing-dependency.yaml": (8, "feature 'b' depends on 'aa', which is not defined (did you"),
    "misspelt-key.yaml": (5, "unknown key 'descripton' in feature 'a' (did you mean"),
    "no-description-no-spec.yaml": (4, "feature '070-undescribed' has no description"),
    "no-layers.yaml": (1, "the file has no 'layers': it is required"),
    "on-conflict-agent.yaml": (2, "on_conflict 'agent' is not supported: use 'manual'"),
    "only-comments.yaml": (None, "the file is empty"),
    "self-dependency.yaml": (6, "feature 'a' depends on itself: remove 'a'"),
    "syntax-error.yaml": (4, "not valid YAML: expected ',' or ']'"),
    "tab-indent.yaml": (2, "a tab character where YAML needs spaces: indent with spaces"),
    "tag.yaml": (5, "tags (!!str, !foo) are not allowed"),
    "top-level-list.yaml": (1, "expected a mapping at the top, with a 'layers:' list"),
    "unknown-schema-version.yaml": (1, "unknown schema_version '2.0': this dagspec reads '1.0'"),
    "unknown-top-key.yaml": (1, "unknown key 'version' in the file (did you mean 'schema_ver"),
    "wrong-type.yaml": (2, "'max_parallel' of execution should be a whole number, found 'many'"),
    "zero-duration.yaml": (2, "execution.timeout is '0s', a duration of zero: give one above 0"),
}


def test_every_bad_fixture_has_an_expected_message() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_rejected_with_one_line_naming_file_and_line(
    name: str, git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(BAD / name, git_repo / name)
    assert run_cli("validate", name) == 1
    out, err = capsys.readouterr()
    line, message = EXPECTED[name]
    where = name if line is None else f"{name}:{line}"
    assert out == ""
    assert err == f"dag: error: {where}: {message}" + err.split(message, 1)[1]
    assert err.count("\n") == 1


def test_a_5_mb_file_is_refused_without_parsing(
    tmp_path: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 500_000 + "layers: []\n")
    assert run_cli("validate", path) == 1
    assert capsys.readouterr().err == f"dag: error: {path}: larger than 1024 KiB: not a DAG file\n"


def test_missing_file_and_directory(
    tmp_path: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("validate", tmp_path / "nope.yaml") == 1
    assert run_cli("validate", tmp_path) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"dag: error: {tmp_path / 'nope.yaml'}: no such file",
        f"dag: error: {tmp_path}: is a directory, not a DAG file",
    ]


def test_good_file_in_a_repository(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "dags" / "example.yaml", git_repo / "dag.yaml")
    assert run_cli("validate", "dag.yaml") == 0
    assert capsys.readouterr().out == "OK: 6 features in 2 layers\n"


def test_a_written_spec_stands_in_for_a_description(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(BAD / "no-description-no-spec.yaml", git_repo / "dag.yaml")
    spec = git_repo / "specs" / "070-undescribed" / "spec.yaml"
    spec.parent.mkdir(parents=True)
    spec.write_text("feature: {}\n")
    assert run_cli("validate", "dag.yaml") == 0
    assert capsys.readouterr().out == "OK: 1 feature in 1 layer\n"


def test_a_spec_directory_autospec_cannot_read_is_named_with_file_and_line(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """A feature goes on from its specs/<id>/; autospec reads the number from that name
    (GetSpecMetadata), so one without NNN- would fail only after the agent ran (issue 13)."""
    for name in ("hello", "007-older", "010-fine"):
        (git_repo / "specs" / name).mkdir(parents=True)
        (git_repo / "specs" / name / "spec.yaml").write_text("feature: {}\n")
    (git_repo / "dag.yaml").write_text(
        "layers:\n  - id: L0\n    features:\n"
        '      - {id: "010-fine"}\n'
        '      - {id: hello, description: "Say hello"}\n'
        '      - {id: bye, description: "Say bye"}\n'  # no specs/bye/: specified afresh
    )
    assert run_cli("validate", "dag.yaml") == 1
    assert capsys.readouterr().err == (
        "dag: error: dag.yaml:5: feature 'hello' goes on from specs/hello/, a name autospec "
        "cannot read (a spec directory's name starts with its number, NNN-): rename the "
        "directory and the feature, e.g. to 011-hello, or remove specs/hello/ to have the "
        "feature specified afresh\n"
    )
    assert run_cli("run", "dag.yaml", "--dry-run") == 1  # refused before anything runs
    assert "dag.yaml:5: feature 'hello' goes on from specs/hello/" in capsys.readouterr().err


def test_outside_a_repository_the_spec_check_is_skipped_with_a_note(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(BAD / "no-description-no-spec.yaml", tmp_path / "dag.yaml")
    assert run_cli("validate", "dag.yaml") == 0
    assert capsys.readouterr().out == (
        "note: dag.yaml is not in a git repository: specs/ was not checked\n"
        "OK: 1 feature in 1 layer\n"
    )


def test_repo_option_names_where_specs_are(
    tmp_path: Path,
    git_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(BAD / "no-description-no-spec.yaml", tmp_path / "dag.yaml")
    assert run_cli("validate", "dag.yaml", "--repo", git_repo) == 1
    assert "has no description" in capsys.readouterr().err


def test_json_valid_and_invalid(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "dags" / "diamond.yaml", git_repo / "good.yaml")
    shutil.copy(BAD / "missing-dependency.yaml", git_repo / "bad.yaml")
    assert run_cli("validate", "good.yaml", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "valid": True,
        "errors": [],
        "warnings": [],
        "features": 4,
        "layers": 1,
    }
    assert run_cli("validate", "bad.yaml", "--json") == 1
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["valid"] is False
    assert report["features"] is report["layers"] is None  # not 0: nothing was counted
    assert report["errors"] == [
        {
            "file": "bad.yaml",
            "line": 8,
            "message": "feature 'b' depends on 'aa', which is not defined (did you mean 'a'?)",
        }
    ]


def test_every_problem_of_a_file_in_one_pass(
    write_dag: Callable[..., Path], run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt key, a missing dependency, a cycle and a feature without a description
    are found together, not in rounds (issue 15)."""
    write_dag(
        "execution:\n  max_paralel: 2\n"
        "layers:\n  - id: L0\n    features:\n"
        "      - {id: a, description: x, depends_on: [c, zz]}\n"
        "      - {id: b, description: x, depends_on: [a]}\n"
        "      - {id: c, depends_on: [b]}\n"
    )
    assert run_cli("validate", "dag.yaml") == 1
    assert capsys.readouterr().err.splitlines() == [
        "dag: error: dag.yaml:2: unknown key 'max_paralel' in execution (did you mean "
        "'max_parallel'?); allowed keys: max_parallel, timeout, stall_timeout, base_branch, "
        "on_conflict, setup, copy, notify",
        "dag: error: dag.yaml:6: feature 'a' depends on 'zz', which is not defined",
        "dag: error: dag.yaml:6: dependency cycle: a -> c -> b -> a",
        "dag: error: dag.yaml:8: feature 'c' has no description and there is no "
        "specs/c/spec.yaml: add a description, or write the spec first",
    ]


@pytest.mark.parametrize("kind", ["feature", "layer"])
def test_a_duplicate_id_does_not_hide_a_cycle_through_its_first_definition(
    kind: str,
    write_dag: Callable[..., Path],
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The second definition of an id replaced the first's edges in the cycle check: only
    the duplicate was reported, and the cycle came next round."""
    if kind == "feature":
        write_dag(
            "layers:\n  - id: L0\n    features:\n"
            "      - {id: a, description: x, depends_on: [c]}\n"
            "      - {id: c, description: x, depends_on: [a]}\n"
            "      - {id: a, description: x}\n"
        )
        cycle, duplicate = "4: dependency cycle: a -> c -> a", "6: duplicate feature id 'a'"
    else:
        write_dag(
            "layers:\n"
            "  - {id: L0, depends_on: [L1], features: [{id: a, description: x}]}\n"
            "  - {id: L1, depends_on: [L0], features: [{id: b, description: x}]}\n"
            "  - {id: L0, features: [{id: c, description: x}]}\n"
        )
        cycle, duplicate = "2: layer dependency cycle: L0 -> L1 -> L0", "4: duplicate layer id"
    assert run_cli("validate", "dag.yaml") == 1
    err = capsys.readouterr().err
    assert f"dag: error: dag.yaml:{cycle}\n" in err
    assert f"dag: error: dag.yaml:{duplicate}" in err


def test_quiet_prints_nothing_for_a_valid_file(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "dags" / "diamond.yaml", git_repo / "good.yaml")
    shutil.copy(BAD / "cycle-layers.yaml", git_repo / "bad.yaml")
    assert run_cli("validate", "--quiet", "good.yaml") == 0
    assert capsys.readouterr() == ("", "")
    assert run_cli("validate", "-q", "bad.yaml") == 1
    assert capsys.readouterr().err.startswith("dag: error: bad.yaml:2: layer dependency cycle")


@pytest.mark.slow
def test_the_staged_version_of_the_file_is_checked_from_stdin(git_repo: Path) -> None:
    """The README's pre-commit recipe: `git show :dag.yaml | dag validate - ...`."""
    shutil.copy(BAD / "cycle-layers.yaml", git_repo / "dag.yaml")
    git(git_repo, "add", "dag.yaml")
    shutil.copy(FIXTURES / "dags" / "diamond.yaml", git_repo / "dag.yaml")  # not staged
    recipe = "git show :dag.yaml | dag validate --quiet --stdin-filename dag.yaml -"
    argv = [
        "/bin/sh",
        "-c",
        recipe.replace("dag validate", f"{sys.executable} -m dagspec validate"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(argv, cwd=git_repo, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr == "dag: error: dag.yaml:2: layer dependency cycle: L0 -> L1 -> L0\n"
    git(git_repo, "add", "dag.yaml")
    done = subprocess.run(argv, cwd=git_repo, env=env, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_usage_errors_exit_2(
    run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli() == 2
    assert run_cli("validate") == 2
    assert run_cli("frobnicate") == 2
    assert "usage: dag" in capsys.readouterr().err


def _mutations() -> st.SearchStrategy[tuple[str, int, str]]:
    edits = st.sampled_from(["delete", "duplicate", "insert", "truncate", "indent", "dedent"])
    tokens = st.sampled_from([*":-[]{}#&*!|>'\"\t \n%@`,?", "id: ", "a", "L0", "\ufeff", "\x00"])
    junk = st.lists(tokens, max_size=6).map("".join)
    return st.tuples(edits, st.integers(min_value=0, max_value=10_000), junk)


VALID_TEXTS = [p.read_text() for p in sorted((FIXTURES / "dags").glob("*.yaml"))]


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(VALID_TEXTS), edits=st.lists(_mutations(), min_size=1, max_size=3))
def test_mutated_valid_files_never_crash(
    tmp_path_factory: pytest.TempPathFactory, base: str, edits: list[tuple[str, int, str]]
) -> None:
    text = base
    for kind, where, junk in edits:
        text = _mutate(text, kind, where, junk)
    path = tmp_path_factory.mktemp("mutant") / "dag.yaml"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path), "--repo", str(path.parent)])
    assert code in (0, 1)
    if code == 0:
        assert out.getvalue().startswith("OK: ")
    else:
        lines = err.getvalue().splitlines()
        assert lines
        assert all(line.startswith(f"dag: error: {path}") for line in lines), lines


def _mutate(text: str, kind: str, where: int, junk: str) -> str:
    lines = text.splitlines(keepends=True)
    i = where % max(len(lines), 1)
    if kind == "delete" and lines:
        del lines[i]
    elif kind == "duplicate" and lines:
        lines.insert(i, lines[i])
    elif kind == "insert":
        pos = where % (len(text) + 1)
        return text[:pos] + junk + text[pos:]
    elif kind == "truncate":
        return text[: where % (len(text) + 1)]
    elif kind == "indent" and lines:
        lines[i] = "  " + lines[i]
    elif kind == "dedent" and lines:
        lines[i] = lines[i][2:]
    return "".join(lines)


def test_structural_mutants_start_from_valid_files(tmp_path: Path) -> None:
    for number, base in enumerate(BASES):
        for flow in (False, True):
            path = tmp_path / f"{number}-{flow}.yaml"
            path.write_text(to_text(base, flow=flow))
            assert _validate_in_process(path)[0] == 0, path.read_text()


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutant_texts())
def test_structurally_mutated_files_never_crash(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """Nesting, size and types, not only text (issue 15); the archive gets the same
    mutants in test_zipapp."""
    path = tmp_path_factory.mktemp("mutant") / "dag.yaml"
    path.write_text(text)
    code, out, err = _validate_in_process(path)
    assert code in (0, 1)
    if code == 0:
        assert out.startswith("OK: ")
    else:
        lines = err.splitlines()
        assert lines
        assert all(line.startswith(f"dag: error: {path}") for line in lines), lines[:3]


def _validate_in_process(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path), "--repo", str(path.parent)])
    return code, out.getvalue(), err.getvalue()


FEATURES = "layers:\n  - id: L0\n    features:\n"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('layers: "a\\nb"\n', "found 'a\\nb'"),
        (FEATURES + '      - {id: "x\\ny", description: d}\n', "feature id 'x\\ny' is not valid"),
        (FEATURES + '      - {id: z, description: d, depends_on: ["p\\rq"]}\n',
         "depends on 'p\\rq'"),
    ],
)  # fmt: skip
def test_a_line_break_quoted_from_the_file_keeps_each_error_one_line(
    tmp_path: Path, text: str, shown: str
) -> None:
    """A value with a line break in it split its error into two `dag: error:` lines."""
    path = tmp_path / "dag.yaml"
    path.write_text(text)
    code, out, err = _validate_in_process(path)
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1 and err.startswith(f"dag: error: {path}:")
    assert shown in err


@pytest.mark.parametrize(
    ("text", "line", "said"),
    [
        (FEATURES + '      - {id: a, description: "x\x1by"}\n', 4, "control character (U+001B)"),
        ("%YAML 1.3\n---\nlayers: []\n", 1, "%YAML 1.3 is not a YAML version"),
        ("dag:\n  name: x\n  timeout 2h   # no colon\n# c\n# c\nlayers: []\n", 3, "expected ':'"),
        (FEATURES + "      - {id: a, description: *bold* text}\n", 4, "must be in quotes"),
    ],
)
def test_what_yaml_refuses_is_one_line_at_the_fault(
    tmp_path: Path, text: str, line: int, said: str
) -> None:
    """A raw control character and an unknown %YAML version were a bug report (exit 3); a
    key without its colon was named at the next token after the comments; an alias-like
    Markdown value was told to be written out, which it was."""
    path = tmp_path / "dag.yaml"
    path.write_text(text)
    code, out, err = _validate_in_process(path)
    assert (code, out) == (1, "")
    assert err.startswith(f"dag: error: {path}:{line}: ") and said in err
    assert len(err.splitlines()) == 1
