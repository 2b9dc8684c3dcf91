"""Which spec directory a new run continues for each feature (``driving.recorded_spec_dirs``):
the newest earlier run that completed the same feature (same id, same description), read
from state files and DAG copies on disk; cheap with many earlier runs (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagspec import dagfile, driving
from dagspec.lifecycle import SpecStatus
from dagspec.workspace import RunPaths
from tests.engine_support import dag_text
from tests.run_states import at, run, save, spec


def _earlier(repo: Path, run_id: str, when: float, dag: str, **dirs: str | None) -> None:
    """An earlier run started at ``when`` of the DAG file ``dag``, its specs completed with
    the spec directories ``dirs`` (None: failed)."""
    specs = [
        spec(i, SpecStatus.COMPLETED if d else SpecStatus.FAILED, spec_dir=d)
        for i, d in dirs.items()
    ]
    paths = save(run(repo, run_id, *specs, started_at=at(when)))
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.dag_copy.write_text(dag)


def _now(repo: Path, dag: str) -> dagfile.Dag:
    (repo / "dag.yaml").write_text(dag)
    return dagfile.load_dag(repo / "dag.yaml")


def test_the_newest_run_with_the_same_feature_wins(git_repo: Path) -> None:
    same = dag_text("a", "b", "c")
    _earlier(git_repo, "r1", 0, same, a="specs/001-a", b="specs/002-b", c="specs/003-c")
    _earlier(git_repo, "r2", 60, same, a="specs/004-a", b=None)
    renamed = same.replace("Build c", "Build something else")
    _earlier(git_repo, "r3", 120, renamed, c="specs/009-c")  # another description: new work
    found = driving.recorded_spec_dirs(git_repo, _now(git_repo, same))
    assert found == {"a": "specs/004-a", "b": "specs/002-b", "c": "specs/003-c"}


def test_a_damaged_dag_copy_or_state_file_is_passed_over(git_repo: Path) -> None:
    same = dag_text("a")
    _earlier(git_repo, "r1", 0, same, a="specs/001-a")
    _earlier(git_repo, "r2", 60, "layers: [\n", a="specs/002-a")  # the copy cannot be read
    (RunPaths(git_repo, "r3").state_file).write_text("format: 1\nspecs: [\n")
    assert driving.recorded_spec_dirs(git_repo, _now(git_repo, same)) == {"a": "specs/001-a"}


def test_a_hundred_identical_copies_are_parsed_once(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = dag_text("a", "b")
    for n in range(100):
        _earlier(git_repo, f"r{n:03d}", n, same, a=f"specs/{n + 1:03d}-a", b=None)
    calls: list[str] = []
    real = dagfile.check_bytes

    def counting(raw: bytes, label: str, name: str) -> dagfile.Checked:
        calls.append(label)
        return real(raw, label, name)

    monkeypatch.setattr(driving, "check_bytes", counting)
    found = driving.recorded_spec_dirs(git_repo, _now(git_repo, same))
    assert found == {"a": "specs/100-a"}
    assert len(calls) == 1
