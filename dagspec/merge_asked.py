"""That a merge of a ``--no-merge`` run was asked for, kept where the state cannot keep it.

``dag merge`` records it in the state before it merges (``commands.merge``), so that a merge
that then fails leaves ``dag status`` exiting 1, as ``dag run`` would have ended. When even
that save fails (the file size limit below the state file's size, a full disk), an empty
file says it: creating one writes no byte, so no limit stops it. ``dag status`` reads both.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import attrs

from dagspec.lifecycle import RunState
from dagspec.workspace import RunPaths


def path(paths: RunPaths) -> Path:
    """``<run dir>/merge-asked``, empty."""
    return paths.run_dir / "merge-asked"


def mark(paths: RunPaths) -> None:
    """Note that a merge is asked for, before the state records it; when this cannot be
    written either, nothing more can be kept (the state's save says why)."""
    with contextlib.suppress(OSError):
        path(paths).touch()


def recorded(paths: RunPaths) -> None:
    """The state records it now: the note is not needed."""
    with contextlib.suppress(OSError):
        path(paths).unlink(missing_ok=True)


def seen(paths: RunPaths, run: RunState) -> RunState:
    """The run as the merge asked for makes it: one to merge, even when the state could not
    say so (``mark``). One ``stat``, only for a run recorded ``--no-merge``."""
    if run.options.merge or not path(paths).exists():
        return run
    return attrs.evolve(run, options=attrs.evolve(run.options, merge=True))
