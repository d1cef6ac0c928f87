"""A config that lost most of its content (a bad include glob, say) with prune on: refused without
--allow-mass-delete."""

from livestate import PROJECT, live, snapshot

from reconciler.model import BaseJobTemplate, DesiredState, WorkPool

POOLS = [WorkPool(name=n, base_job_template=BaseJobTemplate()) for n in ("a", "b", "c", "d")]
DESIRED = DesiredState(project=PROJECT, pools=(POOLS[0],), prune=True)
SNAPSHOT = snapshot(*(live(p) for p in POOLS))
