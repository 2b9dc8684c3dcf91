"""``dag demo``: a bundled example DAG run in a throwaway repository, no AI agent needed.

It creates a git repository with an autospec constitution and the example DAG below (six
features in two layers, with dependencies), writes the simulated autospec of
``dagspec/demo_autospec.py`` beside it, runs the DAG in parallel with it, merges, and says
where to look. Nothing outside the demo's directory is touched; its autospec can then
run the user's own DAGs (README, "Without an AI agent"), so it says to keep the directory.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

from dagspec import checks, driving, git_commit, git_config
from dagspec.console import dag_command
from dagspec.dagfile import load_dag
from dagspec.errors import DagspecError
from dagspec.lifecycle import RunOptions
from dagspec.workspace import real_path

RUN_ID = "demo"
EXAMPLE_DAG = """\
# The demo DAG: the full form of a DAG file (see "The DAG file" in dagspec's README).
schema_version: "1.0"
dag:
  name: "Demo service"
execution:
  max_parallel: 4
  timeout: "5m"
layers:
  - id: "L0"
    name: "Foundation"
    features:
      - id: "050-error-handling"
        description: "Consistent error types and messages across the service"
      - id: "051-config-loading"
        description: "Load configuration from a file and the environment"
      - id: "052-structured-logging"
        description: "Structured JSON logging with request ids"
        depends_on: ["050-error-handling"]
  - id: "L1"
    name: "Features"
    depends_on: ["L0"]
    features:
      - id: "060-user-auth"
        description: "User authentication with email and password"
      - id: "061-rate-limiting"
        description: "Per-user rate limiting of the API"
        depends_on: ["060-user-auth"]
      - id: "062-health-endpoint"
        description: "A health endpoint reporting the service dependencies"
"""
CONSTITUTION = """\
constitution: {project_name: "demo", version: "1.0.0", ratified: "2026-01-01"}
principles:
  - {name: "Small steps", id: "PRIN-001", priority: "MUST", description: "One module per spec"}
"""


def demo(*, directory: Path | None, color: bool, live: bool = False) -> int:
    """Run the example in ``directory`` (a new temporary one by default); the run's exit code."""
    root = _fresh_directory(directory)
    repo = root / "repo"
    agent = _write_agent(root / "autospec")
    _make_repository(repo)
    print(f"dag demo: a throwaway repository in {repo}, autospec simulated by {agent}\n")
    dag_file = repo / "dag.yaml"
    options = RunOptions(parallel=True, autospec=str(agent))
    dag = load_dag(dag_file)
    hint = f"{dag_command()} --repo {repo}"  # the next: line works from where the user is
    planned = checks.Planned(repo, options, dag, RUN_ID)
    code = driving.start(dag_file, planned, color=color, live=live, hint=hint)
    print(_where_to_look(repo, agent))
    return code


def _fresh_directory(directory: Path | None) -> Path:
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="dag-demo-")).resolve()
    directory = real_path(directory)
    if directory.exists() and not directory.is_dir():
        raise DagspecError(f"{directory} is not a directory: give `dag demo --dir` a new directory")
    if directory.exists() and any(directory.iterdir()):
        raise DagspecError(f"{directory} is not empty: give `dag demo --dir` a new directory")
    if not directory.parent.is_dir():
        raise DagspecError(
            f"{directory.parent} does not exist: give `dag demo --dir` a new directory in an "
            "existing one"
        )
    try:
        directory.mkdir(exist_ok=True)
    except OSError as exc:
        raise DagspecError(f"cannot create {directory}: {exc.strerror}") from None
    return directory


def _write_agent(path: Path) -> Path:
    """The simulated autospec as an executable script for this Python."""
    source = resources.files("dagspec").joinpath("demo_autospec.py").read_text("utf-8")
    body = source.split("\n", 1)[1]  # its own shebang line is replaced by this Python's
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(0o755)
    return path


def _make_repository(repo: Path) -> None:
    repo.mkdir()
    git_config.init_repo(repo, "main")
    git_config.set_config(repo, "user.name", "dag demo")
    git_config.set_config(repo, "user.email", "dag-demo@example.invalid")
    (repo / "README.md").write_text("# Demo service\n\nBuilt spec by spec by `dag demo`.\n")
    (repo / ".gitignore").write_text(".autospec/\n")
    (repo / "dag.yaml").write_text(EXAMPLE_DAG)
    memory = repo / ".autospec" / "memory"
    memory.mkdir(parents=True)
    (memory / "constitution.yaml").write_text(CONSTITUTION)
    git_commit.commit_all(repo, "Demo service: README and the DAG")


def _where_to_look(repo: Path, agent: Path) -> str:
    dag = dag_command()
    sights = [
        ("git log --oneline --graph", "each spec merged into main, in dependency order"),
        ("ls specs src", "what the simulated autospec wrote"),
        (f"{dag} status {RUN_ID}", "the run, spec by spec"),
        (f"{dag} logs {RUN_ID} 060-user-auth", "one spec's output"),
        (f"cat .autospec/state/dag-runs/{RUN_ID}.yaml", "the run's state file"),
    ]
    width = max(len(command) for command, _ in sights)
    lines = [f"\nThe demo repository is {repo}. Have a look:", f"  cd {repo}"]
    lines += [f"  {command:<{width}}  {why}" for command, why in sights]
    lines += [
        f"Nothing outside {agent.parent} was touched. Its simulated autospec runs DAGs of",
        'your own without an AI agent (README, "Without an AI agent"):',
        f"  export DAGSPEC_AUTOSPEC={agent}",
        "Keep the directory while your runs use it; delete it when you are done.",
    ]
    return "\n".join(lines)
