"""dagspec: run many autospec workflows at once, in dependency order, and merge them back.

Map of the package (core modules are pure; edge modules do I/O; commands compose them):

- ``cli``            the argparse surface of every command, dispatch, the one error handler
- ``errors``         ``DagspecError`` and its subclasses, each carrying its evidence
- ``crash``          the crash log of a bug in dagspec: versions, arguments, traceback
- ``spec``           the DAG file: schema, frozen attrs model, ``load_dag()``
- ``graph``          pure graph logic: cycles, order, waves, the ready rule, cascades
- ``draw``           ASCII, Mermaid and DOT drawings of a DAG
- ``git``            one subprocess helper and named git verbs, with a cleaned ``GIT_*`` env
- ``workspace``      names and places: run ids, state and log paths, worktrees, branches
- ``state``          statuses, frozen run state, atomic versioned load/save, the run lock
- ``autospec``       the autospec contract: argv for a resume point, banners, tasks progress
- ``worktree``       a spec's worktree: made ready before autospec runs, its work kept after
- ``attempt``        one attempt at a spec outside its agent: before it starts, after it exits
- ``scheduler``      the async heart: nursery, ``CapacityLimiter``, agent processes, signals
- ``procgroup``      agents' process groups: who is still in one, signalling it
- ``progress``       a live table on a terminal, one line per event elsewhere
- ``merge``          merging completed specs into the base branch, away from the checkout
- ``render``         pure renderers: status table, summary, list of runs
- ``demo_autospec``  the simulated autospec that ``dag demo`` runs
- ``bytecode``       ``dag.pyz``'s importer: the archive's bytecode for whichever Python runs it
- ``commands/``      one module per subcommand
"""

from __future__ import annotations

__version__ = "0.1.0"
