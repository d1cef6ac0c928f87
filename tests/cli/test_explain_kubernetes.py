"""`wp explain` of a Kubernetes pool or deployment shows the batch/v1 Job a worker would submit, and that Job is
one an API server accepts: checked with the schema validation of the in-process API server of tests/k8s_fake
(the `kubernetes` client's OpenAPI models plus the server's semantic rules), for every Kubernetes pool and
deployment of the examples and of the fixtures below."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from k8s_fake.validation import check_job
from wp_cli import ProjectWriter, Wp

from reconciler.runtime.executors.container import DEFAULT_IMAGE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Shapes users write that once produced a Job a cluster refuses: no name (generateName "-"), no image, env as a
# mapping next to a list with valueFrom, label values with spaces and slashes, a name far past 63 characters.
FIXTURE = """\
project: k8s-fixtures
work_pools:
  - name: k8s-default
    type: kubernetes
  - name: k8s-literal
    type: kubernetes
    base_job_template:
      job_configuration:
        env: "{{ env }}"
        job_manifest:
          apiVersion: batch/v1
          kind: Job
          metadata: {generateName: "{{ name }}-", labels: {team: "data platform/ops"}}
          spec:
            template:
              spec:
                containers:
                  - name: flow
                    image: "{{ image }}"
                    env:
                      - {name: FROM_SECRET, valueFrom: {secretKeyRef: {name: creds, key: token}}}
                      - {name: PLAIN, value: 3}
      variables:
        type: object
        properties:
          env: {type: object}
          image: {type: string}
          name: {type: string}
deployments:
  - name: bare
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: k8s-default}
  - name: with-env-mapping
    entrypoint: flows/hello.py:say_hello
    work_pool:
      name: k8s-default
      job_variables:
        env: {LOG_LEVEL: debug, RETRIES: "3"}
        labels: {owner: "Jane Doe", "example.com/tier": gold}
        name: "A Very Long Job Name That Keeps Going Well Past Sixty Three Characters Of Text"
  - name: literal-template
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: k8s-literal}
"""


def _kubernetes_addresses(project: Path, home_wp: Wp) -> list[str]:
    """Every Kubernetes pool and every deployment on one, as `wp explain` addresses, read from the store."""
    pools = {p["name"] for p in home_wp("work-pool", "ls", "--json").json() if p["type"] == "kubernetes"}
    deployments = home_wp("deployment", "ls", "--json").json()
    addresses = [f"work_pool.{p}" for p in sorted(pools)]
    addresses += [f"deployment.{d['flow']}/{d['name']}" for d in deployments if d.get("work_pool") in pools]
    return addresses


def _manifest(wp: Wp, address: str) -> dict[str, Any]:
    result = wp("explain", address, "--json")
    assert result.code == 0, result.stderr
    manifest: dict[str, Any] = result.json()["job_configuration"]["job_manifest"]
    return manifest


@pytest.mark.parametrize("source", ["examples/platform", "fixture"])
def test_every_kubernetes_job_explain_shows_is_one_an_api_server_accepts(
    source: str, wp: Wp, project: ProjectWriter, tmp_path: Path
) -> None:
    if source == "fixture":
        directory = project("fixture", FIXTURE)
    else:
        directory = tmp_path / "example"
        shutil.copytree(EXAMPLES.parent / source, directory)
    applied = wp("apply", directory, "--auto-approve")
    assert applied.code == 0, applied.stderr
    addresses = _kubernetes_addresses(directory, wp)
    assert len(addresses) >= 3
    for address in addresses:
        manifest = _manifest(wp, address)
        assert check_job(manifest) == [], (address, manifest)


def test_the_explained_job_has_env_as_a_list_a_valid_name_a_default_image_and_valid_labels(
    wp: Wp, project: ProjectWriter
) -> None:
    assert wp("apply", project("fixture", FIXTURE), "--auto-approve").code == 0

    bare = _manifest(wp, "deployment.say-hello/bare")
    container = bare["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == DEFAULT_IMAGE  # no image anywhere: the same default as the Docker executor
    assert bare["metadata"]["generateName"] != "-"

    mapped = _manifest(wp, "deployment.say-hello/with-env-mapping")
    container = mapped["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["LOG_LEVEL"] == {"name": "LOG_LEVEL", "value": "debug"}
    assert env["RETRIES"] == {"name": "RETRIES", "value": "3"}
    generate = mapped["metadata"]["generateName"]
    assert generate.startswith("a-very-long-job-name") and len(generate) <= 58
    labels = mapped["metadata"]["labels"]
    assert labels["owner"] == "Jane_Doe" and labels["example.com/tier"] == "gold"

    literal = _manifest(wp, "deployment.say-hello/literal-template")
    env = {e["name"]: e for e in literal["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FROM_SECRET"]["valueFrom"] == {"secretKeyRef": {"name": "creds", "key": "token"}}
    assert env["PLAIN"]["value"] == "3"
    assert literal["metadata"]["labels"]["team"] == "data_platform_ops"


def test_the_default_image_follows_the_workers_variable(wp: Wp, project: ProjectWriter) -> None:
    assert wp("apply", project("fixture", FIXTURE), "--auto-approve").code == 0
    result = wp("explain", "deployment.say-hello/bare", "--json", env={"WP_DOCKER_IMAGE": "k8sfid/flows:7"})
    container = result.json()["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert container["image"] == "k8sfid/flows:7"


def test_explain_says_where_the_code_of_a_run_is(wp: Wp, project: ProjectWriter) -> None:
    text = FIXTURE.replace(
        "deployments:\n",
        "  - {name: local, type: process}\n"
        "deployments:\n"
        "  - name: on-process\n"
        "    entrypoint: flows/hello.py:say_hello\n"
        "    work_pool: {name: local}\n"
        "  - name: cloned\n"
        "    entrypoint: flows/hello.py:say_hello\n"
        "    work_pool: {name: k8s-default, job_variables: {image: 'team/flows:3'}}\n"
        "    pull:\n"
        "      - git_clone: {repository: 'https://git.example.com/team/flows.git', branch: main}\n",
    )
    assert wp("apply", project("fixture", text), "--auto-approve").code == 0

    def code(address: str) -> str:
        result = wp("explain", address, "--json")
        assert result.code == 0, result.stderr
        return str(result.json()["code"])

    assert code("deployment.say-hello/bare") == (
        f"in the image {DEFAULT_IMAGE}, at its working directory: the deployment has no pull steps"
    )
    assert code("deployment.say-hello/cloned").startswith(
        "fetched by the pull steps into the image team/flows:3: git_clone https://git.example.com/team/flows.git"
    )
    assert code("deployment.say-hello/on-process") == (
        "in the directory the worker is started in: the deployment has no pull steps and the pool no working_dir"
    )
    human = wp("explain", "deployment.say-hello/bare")
    assert "Code: in the image" in human.stdout
