"""dagspec: run many autospec workflows at once, in dependency order, and merge them back.

Map of the package (core modules are pure; edge modules do I/O; commands compose them):

- ``cli``        the argparse surface of every command, dispatch, the one error handler
- ``errors``     ``DagspecError`` and its subclasses, each carrying its evidence
- ``spec``       the DAG file: strictyaml schema, frozen attrs model, ``load_dag()``
- ``graph``      pure graph logic: effective dependencies, cycles, order, waves, ready set
- ``git``        one subprocess helper and named git verbs, with a cleaned ``GIT_*`` env
- ``workspace``  names and places: run ids, state and log paths, worktrees, branches
- ``state``      statuses, frozen run state, atomic versioned load/save, the run lock
- ``autospec``   the autospec contract: argv for a resume point, banners, tasks progress
- ``scheduler``  the async heart: nursery, ``CapacityLimiter``, agent processes, signals
- ``merge``      merging completed specs away from the user's checkout
- ``render``     pure renderers: status table, graphs, summaries
- ``commands/``  one module per subcommand
"""

from __future__ import annotations

__version__ = "0.1.0"
