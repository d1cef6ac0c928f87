"""References to Kubernetes Secrets are shown; secret values, wherever they sit, stay masked (issue 11)."""

from __future__ import annotations

import pytest

from reconciler.model import is_secret_path, mask_secrets


@pytest.mark.parametrize(
    ("path", "masked"),
    [
        ("job_variables.image_pull_secrets", False),
        ("job_variables.image_pull_secrets.0.name", False),
        ("job_variables.imagePullSecrets.0.name", False),
        ("job_variables.secret_name", False),
        ("job_variables.env.0.valueFrom.secretKeyRef.key", False),
        ("job_variables.envFrom.0.secretRef.name", False),
        ("job_manifest.spec.volumes.0.secret.secretName", False),
        ("job_variables.secret", True),
        ("job_variables.image_pull_secrets.0.token", True),
        ("job_variables.secretRef.password", True),
        ("job_variables.env.API_TOKEN", True),
        ("job_variables.client_secret", True),
        ("parameters.api_key", True),
    ],
)
def test_attribute_paths_are_masked_by_what_they_hold(path: str, masked: bool) -> None:
    # a plan's attribute changes are masked by their path
    assert is_secret_path(path.split(".")) is masked


def test_a_job_manifest_shows_references_and_masks_values() -> None:
    manifest = {
        "spec": {
            "imagePullSecrets": [{"name": "regcred"}],
            "volumes": [{"name": "creds", "secret": {"secretName": "app-creds"}}],
            "containers": [
                {
                    "env": [
                        {"name": "DB_PASSWORD", "value": "hunter2"},
                        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "api", "key": "k"}}},
                        {"name": "REGION", "value": "eu"},
                    ],
                    "envFrom": [{"secretRef": {"name": "app-env", "optional": True}}],
                }
            ],
        }
    }
    shown = mask_secrets(manifest)
    spec = shown["spec"]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["volumes"] == [{"name": "creds", "secret": {"secretName": "app-creds"}}]
    env = spec["containers"][0]["env"]
    assert env[0] == {"name": "DB_PASSWORD", "value": "(sensitive)"}
    assert env[1]["valueFrom"] == {"secretKeyRef": {"name": "api", "key": "k"}}
    assert env[2] == {"name": "REGION", "value": "eu"}
    assert spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "app-env", "optional": True}}]
