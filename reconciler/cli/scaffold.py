"""`wp init`: the files of a starter project."""

from __future__ import annotations

from pathlib import Path

WP_YAML = """\
# A wp project: `wp plan` shows what would change, `wp apply` makes it so.
project: {project}

work_pools:
  - name: {project}-local
    type: process
    description: Runs flows as local processes
    queues:
      - {{name: default, priority: 1}}

deployments:
  - name: hello
    entrypoint: flows/hello.py:hello
    parameters: {{who: world}}
    work_pool: {{name: {project}-local}}
    schedules:
      - {{slug: hourly, interval: 3600}}
"""

FLOW = '''\
def hello(who: str = "world") -> str:
    """A plain function: wp runs it without any decorator or import."""
    print(f"Hello, {who}!")
    return who
'''


def write_starter_project(directory: Path) -> list[Path]:
    """Write wp.yaml and flows/hello.py; existing files are left alone."""
    directory.mkdir(parents=True, exist_ok=True)
    project = (
        "".join(c if c.isalnum() else "-" for c in directory.resolve().name.lower()).strip("-") or "project"
    )
    files = {directory / "wp.yaml": WP_YAML.format(project=project), directory / "flows" / "hello.py": FLOW}
    created = []
    for path, text in files.items():
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        created.append(path)
    return created
