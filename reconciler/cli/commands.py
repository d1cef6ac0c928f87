"""The table of `wp`'s top-level commands: each name, the module and attribute that define it, and its one-line
help, in the order `wp --help` lists them.

A command's module is imported only when that command is chosen (`reconciler.cli.lazy`), and `wp --help` is
printed from this table alone (`reconciler.cli.roothelp`), so neither pays for the other commands' imports.
Must stay import-free: the help path reads it before anything else is loaded. `tests/cli/test_lazy_commands.py`
checks that every entry resolves and that its help is the command's own.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    module: str
    # A `typer.Typer` (a command group, mounted under the name) or a command function.
    attribute: str
    help: str


ROOT_HELP = "Work pools as code: declare work pools, queues, job templates and deployments; plan, apply, run."

COMMANDS: dict[str, Entry] = {
    "init": Entry(
        "reconciler.cli.reconcile",
        "init",
        "Create a starter project: wp.yaml with one process pool and one deployment, and its flow.",
    ),
    "validate": Entry(
        "reconciler.cli.reconcile",
        "validate",
        "Check the configuration: schema, names, references, templates, job variables, entrypoints.",
    ),
    "plan": Entry(
        "reconciler.cli.reconcile", "plan", "Show what apply would change: the config against the live store."
    ),
    "apply": Entry(
        "reconciler.cli.reconcile",
        "apply",
        "Apply the configuration (or exactly a saved plan) in one transaction.",
    ),
    "destroy": Entry(
        "reconciler.cli.reconcile",
        "destroy",
        "Delete every object this project manages (objects made by hand or by other projects are kept).",
    ),
    "drift": Entry(
        "reconciler.cli.reconcile",
        "drift",
        "List objects changed outside wp since the last apply, and what the config would change back.",
    ),
    "history": Entry(
        "reconciler.cli.reconcile",
        "history",
        "List recorded applies: time, actor, project, git commit and branch, summary.",
    ),
    "force-unlock": Entry("reconciler.cli.reconcile", "force_unlock", "Break a stale apply lock."),
    "import": Entry(
        "reconciler.cli.inventory",
        "import_",
        "Write config for live objects made by hand, so the next apply adopts them into the project.",
    ),
    "export": Entry(
        "reconciler.cli.inventory",
        "export",
        "Write every live object as configuration (secrets become ${VAR} references).",
    ),
    "explain": Entry(
        "reconciler.cli.inventory",
        "explain",
        "Show the job configuration a deployment's runs get, and where each value comes from.",
    ),
    "ci": Entry(
        "reconciler.cli.ci",
        "ci",
        "Run wp in a GitHub workflow: plan on a pull request, apply on merge, or check for drift.",
    ),
    "scheduler": Entry(
        "reconciler.cli.scheduler",
        "scheduler",
        "Keep every active schedule's next runs created, mark late runs and recover dead workers' runs.",
    ),
    "work-pool": Entry("reconciler.cli.pools", "app", "Create, inspect and change work pools."),
    "work-queue": Entry("reconciler.cli.queues", "app", "Create, inspect and change work queues."),
    "deployment": Entry("reconciler.cli.deployments", "app", "List, inspect, run and change deployments."),
    "sync": Entry(
        "reconciler.cli.sync",
        "app",
        "Continuous GitOps sync: watch a branch, apply each new revision, report drift.",
    ),
    "worker": Entry("reconciler.cli.workers", "worker_app", "Start workers and list them."),
    "flow-run": Entry("reconciler.cli.runs", "flow_run_app", "List, inspect, follow and cancel flow runs."),
    "server": Entry(
        "reconciler.cli.server",
        "app",
        "Run the wp server (HTTP API, scheduler, late-run and crash detection).",
    ),
}
