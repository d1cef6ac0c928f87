"""The default base job templates: exactly the variables SPEC §1 promises, all valid, all renderable."""

from __future__ import annotations

import pytest

from reconciler.engine.job_templates import KNOWN_POOL_TYPES, default_base_job_template
from reconciler.engine.template import check_template, placeholders, render_job_configuration
from reconciler.errors import ValidationError

COMMON = {"name", "env", "labels", "command"}
PROCESS = {"name", "env", "labels", "command", "stream_output", "working_dir"}
DOCKER = PROCESS | {
    "image", "image_pull_policy", "networks", "network_mode", "volumes", "auto_remove", "mem_limit",
    "privileged",
}  # fmt: skip
KUBERNETES = COMMON | {
    "image", "namespace", "service_account_name", "image_pull_policy", "backoff_limit", "cpu_request",
    "cpu_limit", "memory_request", "memory_limit", "finished_job_ttl", "job_watch_timeout_seconds",
    "pod_watch_timeout_seconds",
}  # fmt: skip


def variables_of(pool_type: str) -> set[str]:
    return set(default_base_job_template(pool_type).variables["properties"])


def test_process_exposes_exactly_the_spec_variables_with_placeholders_of_the_same_names() -> None:
    t = default_base_job_template("process")
    assert variables_of("process") == PROCESS
    assert t.job_configuration == {n: "{{ " + n + " }}" for n in PROCESS}
    assert t.variables["properties"]["stream_output"]["default"] is True
    assert t.variables["type"] == "object"


def test_docker_adds_its_container_variables_to_the_process_ones() -> None:
    assert variables_of("docker") == DOCKER


def test_kubernetes_exposes_its_variables_and_a_batch_v1_job_manifest() -> None:
    t = default_base_job_template("kubernetes")
    assert variables_of("kubernetes") == KUBERNETES
    assert t.variables["properties"]["namespace"]["default"] == "default"
    manifest = t.job_configuration["job_manifest"]
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")


@pytest.mark.parametrize("pool_type", KNOWN_POOL_TYPES)
def test_every_default_template_is_valid_and_uses_every_variable(pool_type: str) -> None:
    t = default_base_job_template(pool_type)
    assert check_template(t) == []
    assert placeholders(t.job_configuration) == set(t.variables["properties"])
    for prop in t.variables["properties"].values():
        assert prop["title"] and prop["description"]


def test_kubernetes_renders_a_manifest_without_the_unset_fields() -> None:
    t = default_base_job_template("kubernetes")
    cfg = render_job_configuration(t, {"image": "repo/etl:1", "cpu_request": "2", "env": {"LOG": "info"}})
    manifest = cfg["job_manifest"]
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert manifest["metadata"]["namespace"] == "default"
    assert container["image"] == "repo/etl:1"
    assert container["resources"]["requests"] == {"cpu": "2"}
    assert container["env"] == {"LOG": "info"}
    assert "serviceAccountName" not in manifest["spec"]["template"]["spec"]
    assert "ttlSecondsAfterFinished" not in manifest["spec"]
    assert manifest["spec"]["backoffLimit"] == 0


def test_each_call_returns_an_independent_template() -> None:
    first = default_base_job_template("process")
    first.variables["properties"]["env"]["default"] = {"X": "1"}
    assert "default" not in default_base_job_template("process").variables["properties"]["env"]


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValidationError) as err:
        default_base_job_template("ecs")
    assert "'ecs'" in err.value.message
    for known in ("process", "docker", "kubernetes"):
        assert known in err.value.message


def test_the_known_types_are_the_models_pool_types() -> None:
    from reconciler.model import PoolType

    assert tuple(t.value for t in PoolType) == KNOWN_POOL_TYPES


@pytest.mark.parametrize("pool_type", KNOWN_POOL_TYPES)
def test_the_template_document_is_the_models_dump(pool_type: str) -> None:
    """The command line sends the document to a server in place of the model's dump: they must be one value,
    key order included."""
    from reconciler.engine.job_templates import default_template_document

    document = default_template_document(pool_type)
    dumped = default_base_job_template(pool_type).model_dump(mode="json")
    assert document == dumped
    assert list(document) == list(dumped) and list(document["variables"]) == list(dumped["variables"])


def test_the_template_document_refuses_an_unknown_type_as_the_model_path_does() -> None:
    from reconciler.engine.job_templates import default_template_document

    with pytest.raises(ValidationError, match="unknown work pool type 'nope'"):
        default_template_document("nope")
