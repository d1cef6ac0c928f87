"""The small projects the CLI tests write: a module of its own (not conftest.py) so test modules can import
them by a name no other test folder uses."""

FLOW = "def say_hello(name: str = 'world', **settings: object) -> str:\n    return name\n"

DEMO = """\
project: demo
work_pools:
  - name: p
    type: process
    concurrency_limit: 4
    ignore_changes: [paused]
    queues:
      - {name: urgent, priority: 1}
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: p, work_queue_name: urgent}
"""

__all__ = ["DEMO", "FLOW"]
