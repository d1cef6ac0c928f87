"""The table of `wp`'s top-level commands: each name, the module and attribute that define it, and its one-line
help, in the order `wp --help` lists them.

A command's module is imported only when that command is chosen (`reconciler.cli.lazy`), and `wp --help` and
`wp GROUP --help` are printed from these tables alone (`reconciler.cli.roothelp`), so none pays for the
commands' imports.
Must stay import-free (not even `typing`): the help path reads it before anything else is loaded. `tests/cli/test_lazy_commands.py`
checks that every entry resolves and that its help is the command's own.
"""

from __future__ import annotations


class Entry:
    """One top-level command. A plain class, not a NamedTuple: `typing` is not loaded for the help."""

    __slots__ = ("attribute", "help", "module")

    def __init__(self, module: str, attribute: str, help: str) -> None:
        self.module = module
        # A `typer.Typer` (a command group, mounted under the name) or a command function.
        self.attribute = attribute
        self.help = help


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

# The subcommands of each command group and their one-line help, in the order `wp GROUP --help` lists them:
# that help is printed from here as the root's is (`reconciler.cli.roothelp`). A group's own help is its
# COMMANDS entry's. `tests/cli/test_lazy_commands.py` checks both against the groups Typer builds.
SUBCOMMANDS: dict[str, dict[str, str]] = {
    "work-pool": {
        "create": "Create a work pool (and its `default` queue).",
        "update": "Change a pool's template, description or concurrency limit.",
        "ls": "List work pools with their status.",
        "inspect": "Show one pool, its template included.",
        "pause": "Stop delivering work from the pool (its schedules keep producing runs).",
        "resume": "Deliver work from the pool again.",
        "delete": "Delete a pool, its queues and workers (refused while deployments use it, unless "
        "--cascade).",
        "set-concurrency-limit": "Cap the runs in PENDING, RUNNING or CANCELLING across the pool.",
        "clear-concurrency-limit": "Remove the pool's concurrency limit.",
        "get-default-base-job-template": "Print the default base job template of a pool type as JSON.",
        "preview": "The runs this pool will deliver in the next hours; late runs are marked.",
    },
    "work-queue": {
        "create": "Create a queue; a taken priority shifts the queues at and after it down to the next gap.",
        "ls": "List queues in priority order, of one pool or of every pool.",
        "inspect": "Show one queue.",
        "pause": "Stop delivering work from this queue.",
        "resume": "Deliver work from this queue again (NOT_READY until a worker polls it).",
        "delete": "Delete a queue (never the pool's `default` queue; refused while deployments use "
        "it, unless --cascade).",
        "set-concurrency-limit": "Cap the queue's runs in PENDING, RUNNING or CANCELLING.",
        "clear-concurrency-limit": "Remove the queue's concurrency limit.",
        "preview": "The runs this queue will deliver in the next hours; late runs are marked.",
    },
    "deployment": {
        "ls": "List deployments.",
        "inspect": "Show one deployment.",
        "pause": "Stop the deployment's schedules from producing runs.",
        "resume": "Let the deployment's schedules produce runs again.",
        "delete": "Delete a deployment, its schedules and its waiting runs (refused while a run of "
        "it is in flight).",
        "run": "Create a flow run of a deployment.",
    },
    "sync": {
        "start": "Watch BRANCH of REPO and apply each new revision of the project at PATH (Ctrl-C or "
        "SIGTERM stops).",
        "status": "Show each sync: phase, reason, revisions, last attempt and success, drift, recent "
        "attempts.",
        "suspend": "Stop applying (fetching and reporting go on) until `wp sync resume`.",
        "resume": "Apply again from the next pass (which starts at once).",
        "now": "Ask for an immediate pass that ignores the backoff and retries a failed revision.",
    },
    "worker": {
        "start": "Start a worker: heartbeat, claim due runs, start them, report states. SIGTERM stops it "
        "gracefully.",
        "ls": "List workers with their status, host, pid and the runs each has in hand; OFFLINE ones "
        "only with --all.",
    },
    "flow-run": {
        "ls": "List flow runs, newest first.",
        "inspect": "Show one flow run, its state history (every change: when, from, to, by whom, why) "
        "and the task runs of a\n"
        "Prefect flow (their final states and retries).",
        "logs": "Print a flow run's logs.",
        "cancel": "Cancel a run: one not started yet becomes CANCELLED; a claimed or running one "
        "CANCELLING,\n"
        "and its worker stops the infrastructure within seconds.",
    },
    "server": {
        "start": "Serve the API at http://HOST:PORT (OpenAPI at /docs and /openapi.json) until SIGTERM "
        "or Ctrl-C."
    },
}
