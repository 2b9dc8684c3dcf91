"""Every table dagspec prints lines up, in display columns, for ids of any length and text of
any width (CJK, emoji: two columns a character), and keeps to the terminal's width: the
merge table, the report card, ``dag status``, ``dag list`` and the live board.

Spec and run ids are ASCII by the DAG file's rule; the renderers are pure, so they are also
given wide ids here, and wide text reaches the tables where users write it (the DAG file's
name in ``dag list``, the files of a conflict in the merge table).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import pytest

from dagspec import board, fit, render, report
from dagspec.lifecycle import RunState, SpecStatus
from dagspec.merge_report import MergeReport, Outcome, SpecMerge, render_report
from tests.conftest import git
from tests.run_states import at, run, save, spec

RunCli = Callable[..., int]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LONG = "002-" + "x" * 96
WIDE = "003-認証機能🚀"
IDS = ["001-short", LONG, WIDE]
WIDTHS = [fit.UNLIMITED, 120, 80, 60, 40]


def starts(line: str, cells: Sequence[str]) -> list[int]:
    """The display column at which each of ``cells`` begins in ``line``, found in order."""
    found, at_index = [], 0
    for cell in cells:
        at_index = line.index(cell, at_index)
        found.append(fit.width_of(line[:at_index]))
        at_index += len(cell)
    return found


def fits(lines: Sequence[str], width: int) -> bool:
    return all(fit.width_of(ANSI.sub("", line)) <= width for line in lines)


# --- the merge table --------------------------------------------------------------------------


def _merge_report(ids: Sequence[str] = IDS) -> MergeReport:
    files = ("src/auth.py", "docs/設計.md")
    specs = [
        SpecMerge(ids[0], f"dag/r/{ids[0]}", Outcome.MERGED, "a" * 40),
        SpecMerge(ids[1], f"dag/r/{ids[1]}", Outcome.CONFLICT, files=files),
        SpecMerge(ids[2], f"dag/r/{ids[2]}", Outcome.MISSING),
    ]
    return MergeReport("r", "main", False, tuple(specs), "0" * 40, "1" * 40)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_merge_table_lines_up_at_any_width(width: int) -> None:
    """It padded ids by characters, not columns, and never cut them: a long id wrapped
    every line on a terminal, a wide one pushed its detail out of the column."""
    lines = render_report(_merge_report(), width=width).splitlines()
    rows = [line for line in lines if line.startswith("  ") and "↳" not in line][:3]
    assert fits(rows, width)
    ids = [starts(row, [row[18:22]])[0] for row in rows]  # each id's first characters
    assert ids == [18, 18, 18]
    found = [(row, d) for row in rows for d in ("aaaa", "in src", "no branch") if d in row]
    inline = {starts(row, [detail])[0] for row, detail in found}
    assert len(inline) <= 1  # every detail on its row begins in one column
    text = "\n".join(lines)
    assert "in src/auth.py, docs/設計.md" in text  # whole, on its row or under it
    assert f"no branch dag/r/{WIDE}" in text
    if width == fit.UNLIMITED:
        assert all(spec_id in text for spec_id in IDS)  # a pipe gets every id whole


def test_a_narrow_merge_table_puts_what_to_act_on_under_its_row() -> None:
    lines = render_report(_merge_report(), width=60).splitlines()
    assert lines[1:6] == [
        "  merged          001-short                     aaaaaaaaaaaa",
        "  conflict        002-xxxxxxxxxxxxxxxxxxxxxxx…",
        "                  ↳ in src/auth.py, docs/設計.md",
        "  branch missing  003-認証機能🚀",
        f"                  ↳ no branch dag/r/{WIDE}",
    ]


# --- the report card --------------------------------------------------------------------------


def _run(repo: Path, run_id: str = "r", ids: Sequence[str] = IDS, merged: bool = True) -> RunState:
    specs = [
        spec(spec_id, SpecStatus.COMPLETED, tasks_done=3, tasks_total=3, attempts=1,
             started_at=at(0), finished_at=at(90), merged=merged,
             merge_commit="c" * 40 if merged else None)
        for spec_id in ids
    ]  # fmt: skip
    return run(repo, run_id, *specs, finished_at=at(100))


@pytest.mark.parametrize("width", WIDTHS)
def test_the_report_card_lines_up_at_any_width(tmp_path: Path, width: int) -> None:
    """It was as wide as its longest id, whatever the terminal, and padded by characters."""
    card = report.card(_run(tmp_path), now=at(200))
    lines = report.render_text(card, width=width).splitlines()
    table = lines[1:5]
    assert fits(table, width)
    columns = [starts(line, ["completed" if line[0] != "S" else "STATUS"]) for line in table]
    assert len({tuple(found) for found in columns}) == 1
    if width >= 80:
        tails = [starts(line, ["merged c"])[0] for line in table[1:]]
        assert tails == [starts(table[0], ["MERGE"])[0]] * 3
    if width == fit.UNLIMITED:
        assert all(any(line.startswith(spec_id + " ") for line in table) for spec_id in IDS)


# --- dag status and dag list ------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_status_table_lines_up_at_any_width(tmp_path: Path, width: int) -> None:
    state = _run(tmp_path)
    lines = render.status_table(state, now=at(200), width=width, color=True).splitlines()
    table = [ANSI.sub("", line) for line in lines[:4]]
    assert fits(table, width)
    status = [starts(line, ["✓" if line[0] != "S" else "STATUS"])[0] for line in table]
    assert len(set(status)) == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_the_list_of_runs_lines_up_at_any_width(tmp_path: Path, width: int) -> None:
    """A DAG file named in CJK or emoji was padded by characters, so its row's status stood
    columns to the right of the others'."""
    runs = [
        _run(tmp_path, "r" * 100),
        attrs.evolve(_run(tmp_path, "short"), dag_file="計画🚀.yaml"),
        attrs.evolve(_run(tmp_path, "mid-20261124"), dag_file="dag.yaml"),
    ]
    lines = render.runs_table(runs, now=at(200), width=width, color=False).splitlines()
    lines = [line for line in lines if "↳" not in line]  # the counts, under a row
    assert fits(lines, width)
    status = [starts(line, ["✓" if line[0] != "R" else "STATUS"])[0] for line in lines]
    assert len(set(status)) == 1


@pytest.mark.parametrize("width", [200, 80, 60, 40])
def test_the_live_board_lines_up_at_any_width(tmp_path: Path, width: int) -> None:
    state = _run(tmp_path)
    view = board.View(width, 20, at(200), board.Columns.of(state))
    lines = [line for line in board.frame(state, view) if "completed " in line]
    assert len(lines) == 3 and fits(lines, width)
    assert len({starts(line, ["completed"])[0] for line in lines}) == 1


def _after_the_id(line: str, id_at: int = 0) -> str:
    """What a table's line has after its id (the first word from column ``id_at``)."""
    return (line[id_at:].split(maxsplit=1)[1:] or [""])[0]


def test_narrow_tables_give_up_whole_columns_never_a_stub() -> None:
    """At ``COLUMNS=40`` the report card ended in ``TIME…`` and ``merged d…``, ``dag list``
    in ``2026-12-01 …`` and the merge table in a cut commit, where ``dag status`` gives up
    whole columns: now every table does, each in its order (``fit.widths``), and the only
    text cut is a long id (``…``), down to the narrowest width that holds an id, a status
    and a merge's word."""
    card = report.card(_run(Path("/r")), now=at(200))
    runs = [_run(Path("/r"), "r" * 100), attrs.evolve(_run(Path("/r"), "x"), dag_file="計画.yaml")]
    merged = _merge_report(["001-short", LONG, WIDE])
    merged = attrs.evolve(merged, specs=tuple(attrs.evolve(s, outcome=Outcome.MERGED,
                          commit="a" * 40, files=()) for s in merged.specs))  # fmt: skip
    for width in range(32, 141):
        text = report.render_text(card, width=width).splitlines()
        assert fits(text, width) and text[-1].endswith(" agent time"), (width, text)  # totals
        table = text[1:5]
        listed = render.runs_table(runs, now=at(200), width=width, color=False).splitlines()
        rows = render_report(merged, width=width).splitlines()[1:4]
        assert fits(table + listed + rows, width), width
        for line in table + [line for line in listed if "↳" not in line]:
            assert "…" not in _after_the_id(line), (width, line)
        for line in rows:
            assert "…" not in _after_the_id(line, 18), (width, line)
            assert line.endswith(("aaaaaaaaaaaa", "…", "short", "🚀")), (width, line)
    assert report.render_text(card, width=40).splitlines()[1].split() == [
        "SPEC", "STATUS", "TIME", "MERGE"]  # fmt: skip
    assert render.runs_table(runs, now=at(200), width=40, color=False).splitlines()[0].split() == [
        "RUN", "STATUS"]  # fmt: skip


# --- through the commands ---------------------------------------------------------------------


@pytest.mark.slow  # five commands, the merge's asking git
def test_merge_report_and_list_keep_to_the_terminal(
    git_repo: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``COLUMNS`` (or the terminal) is the width of every table, the merge's included
    (completed specs whose branches are gone: each is "branch missing")."""
    ids = ["001-short", LONG, "003-" + "y" * 70]
    base = git(git_repo, "rev-parse", "HEAD").strip()
    paths = save(attrs.evolve(_run(git_repo, "r", ids, merged=False), base_commit=base))
    features = "".join(f"      - {{id: {spec_id}, description: x}}\n" for spec_id in ids)
    paths.dag_copy.parent.mkdir(parents=True, exist_ok=True)
    paths.dag_copy.write_text(f"layers:\n  - id: L0\n    features:\n{features}")
    monkeypatch.setenv("COLUMNS", "60")
    for command in (["merge", "--dry-run", "r"], ["report", "r"], ["list"], ["status", "r"]):
        run_cli(*command)
        out = capsys.readouterr().out.splitlines()
        table = [line for line in out if line.startswith(("  ", "001", "002", "r "))]
        assert table and fits([line for line in table if "↳" not in line], 60), (command, out)
    run_cli("merge", "--dry-run", "r")
    out = capsys.readouterr().out
    assert f"↳ no branch dag/r/{LONG}\n" in out  # what to act on, whole
