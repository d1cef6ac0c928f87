"""deploy/kubernetes, checked offline: every manifest is valid against the Kubernetes OpenAPI models the official
client ships (strict: unknown fields and wrong types refused), secrets come only from the Secret, and the
worker's Role grants exactly the API calls the Kubernetes executor makes — measured by running, following,
cancelling and re-attaching to Jobs on the in-process API server of tests/k8s_fake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml
from k8s_fake.harness import harness, wait_for
from k8s_fake.validation import check_model

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
MODELS = {
    "Namespace": "V1Namespace",
    "Secret": "V1Secret",
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "ServiceAccount": "V1ServiceAccount",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(d for _, d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_every_manifest_is_valid_against_the_kubernetes_models() -> None:
    docs = documents()
    assert {d["kind"] for _, d in docs} == set(MODELS)
    for file, doc in docs:
        assert check_model(doc, MODELS[doc["kind"]]) == [], f"{file}: {doc['kind']} {doc['metadata']['name']}"


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == files


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_the_server_reads_its_store_and_api_key_from_the_secret_and_the_worker_reaches_it() -> None:
    server = by_kind("Deployment", "wp-server")
    env = _env(server)
    assert env["WP_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "wp", "key": "database-url"}
    assert env["WP_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "wp", "key": "api-key"}
    assert server["spec"]["replicas"] >= 2
    worker = by_kind("Deployment", "wp-worker")
    wenv = _env(worker)
    assert wenv["WP_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "wp", "key": "api-key"}
    assert "WP_DATABASE_URL" not in wenv  # workers go through the server
    service = by_kind("Service", "wp-server")
    assert (
        wenv["WP_API_URL"]["value"]
        == f"http://{service['metadata']['name']}.wp.svc:{service['spec']['ports'][0]['port']}"
    )
    assert worker["spec"]["template"]["spec"]["serviceAccountName"] == "wp-worker"
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--type") + 1] == "kubernetes"
    for _, doc in documents():
        if doc["kind"] == "Deployment":
            for e in _env(doc).values():
                assert "value" not in e or "KEY" not in e["name"]  # no literal secret in a manifest


def _verb(method: str, path: str) -> tuple[str, str]:
    url = urlparse(path)
    parts = url.path.split("/namespaces/", 1)[1].split("/")[1:]  # after the namespace: resource[/name[/sub]]
    resource = parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")
    if method == "POST":
        return resource, "create"
    if method == "DELETE":
        return resource, "delete"
    if parse_qs(url.query).get("watch") == ["true"]:
        return resource, "watch"
    return resource, "get" if len(parts) > 1 else "list"


def test_the_worker_role_grants_exactly_what_the_executor_uses(tmp_path: Path) -> None:
    role = by_kind("Role", "wp-worker")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    with harness(tmp_path) as h:
        done = h.run(h.deploy("hello"))
        cancelled = h.run(h.deploy("sleepy"))
        h.start_worker()
        assert h.wait_final(done.id).state == "COMPLETED"
        wait_for(lambda: "sleeping" in h.logs(cancelled.id))
        executor = h.executor()
        for infrastructure_id in (h.state(cancelled.id).infrastructure_id or "", ""):  # by id, by label
            followed = executor.reattach(h.state(cancelled.id), infrastructure_id)
            assert followed is not None
            followed.close()
        h.store.set_run_state(cancelled.id, "CANCELLING", now=datetime.now(UTC))
        assert h.wait_final(cancelled.id).state == "CANCELLED"
        with h.cluster.cond:
            used = {_verb(m, p) for m, p in h.cluster.requests if "/namespaces/" in p}
    assert used == granted
