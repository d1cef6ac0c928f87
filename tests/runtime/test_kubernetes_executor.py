"""The Kubernetes executor against the in-process API server of tests/k8s_fake (no cluster can run here): a
real worker, a real SQLite store, the official client configured by a kubeconfig file; pods run as local
processes. Each scenario is one a user of a kubernetes pool would notice."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from k8s_fake.harness import IMAGE, Harness, harness, kubernetes_pool, wait_for


def test_a_run_completes_with_its_logs_env_labels_and_resources_in_the_job(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        deployment = h.deploy(
            "hello",
            job_variables={"env": {"GREETING": "hi from k8s"}, "cpu_request": "250m", "memory_limit": "1Gi"},
        )
        run = h.run(deployment, parameters={"name": "pods"})
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "COMPLETED", (final.state_message, h.logs(run.id))
        logs = h.logs(run.id)
        assert "hello pods" in logs
        assert "GREETING=hi from k8s" in logs
        assert "to stderr" in logs
        assert "API_KEY=-" in logs  # the worker holds WP_API_KEY; the pod never gets it
        body = h.cluster.created_jobs[0]
        namespace, _, name = final.infrastructure_id.partition("/")
        assert namespace == "default" and name.startswith(run.name + "-")
        labels = body["metadata"]["labels"]
        assert labels["wp.io/flow-run-id"] == run.id
        assert labels["wp.io/flow-run-name"] == run.name
        assert labels["wp.io/deployment"] == "hello_d"  # "hello/d" made a valid label value
        assert labels["wp.io/work-pool"] == "k8s" and labels["wp.io/work-queue"] == "default"
        assert labels["wp.io/worker"] == "kw1"
        assert body["metadata"]["annotations"]["wp.io/deployment"] == "hello/d"
        assert body["spec"]["template"]["metadata"]["labels"]["wp.io/flow-run-id"] == run.id
        container = body["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["GREETING"] == "hi from k8s"
        assert "WP_API_KEY" not in env
        assert container["resources"] == {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}
        assert container["image"] == IMAGE
        assert h.server.rejected == []


def test_a_failing_flow_is_failed_with_its_error(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("boom"))
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "FAILED"
        assert "the flow broke" in (final.state_message or "")
        assert any("ValueError: the flow broke" in line for line in h.logs(run.id))


def test_a_missing_image_fails_the_run_fast_with_the_reason_and_deletes_the_job(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("hello", job_variables={"image": "wp-test/missing:9"}))
        started = time.monotonic()
        h.start_worker()
        final = h.wait_final(run.id)
        assert time.monotonic() - started < 60
        assert final.state == "FAILED"
        assert "ErrImagePull" in (final.state_message or "") or "ImagePullBackOff" in (
            final.state_message or ""
        )
        assert "wp-test/missing:9" in (final.state_message or "")
        assert h.cluster.deletes and h.cluster.deletes[-1].propagation == "Foreground"
        assert h.cluster.jobs == {}


def test_the_default_hopeless_grace_ends_a_run_within_a_minute() -> None:
    from reconciler.runtime.executors.kubernetes import KubernetesExecutor

    assert 0 < KubernetesExecutor()._hopeless_grace < 60


def test_an_invalid_image_name_fails_with_its_reason(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        bad_name = h.run(h.deploy("hello", job_variables={"image": "Not A/valid image"}))
        h.start_worker()
        final = h.wait_final(bad_name.id)
        assert final.state == "FAILED" and "InvalidImageName" in (final.state_message or "")


def test_cancel_deletes_the_job_with_foreground_propagation(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy"))
        h.start_worker()
        wait_for(lambda: "sleeping" in h.logs(run.id))
        h.store.set_run_state(run.id, "CANCELLING", now=datetime.now(UTC))
        final = h.wait_final(run.id)
        assert final.state == "CANCELLED"
        assert [d.propagation for d in h.cluster.deletes] == ["Foreground"]
        assert h.cluster.jobs == {} and h.cluster.pods == {}
        assert "woke up" not in h.logs(run.id)


def test_a_job_deleted_by_someone_else_crashes_the_run(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy"))
        h.start_worker()
        wait_for(lambda: "sleeping" in h.logs(run.id))
        job = h.job_of(run.id)
        h.cluster.delete_job("default", job["metadata"]["name"], "Background")
        final = h.wait_final(run.id)
        assert final.state == "CRASHED"
        assert final.state_message == "Kubernetes job was deleted"


def test_an_eviction_with_retries_left_is_not_a_crash(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy", parameters={"seconds": 2}, job_variables={"backoff_limit": 1}))
        h.start_worker()
        first = running_pod(h, run.id)
        h.cluster.evict("default", first)
        final = h.wait_final(run.id)
        assert final.state == "COMPLETED", final.state_message
        logs = h.logs(run.id)
        assert any(f"pod {first} was evicted" in line for line in logs)
        assert "woke up" in logs  # the Job's second pod ran the flow to its end


def test_an_eviction_without_retries_crashes_the_run_with_the_reason(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy"))
        h.start_worker()
        h.cluster.evict("default", running_pod(h, run.id))
        final = h.wait_final(run.id)
        assert final.state == "CRASHED"
        assert "BackoffLimitExceeded" in (final.state_message or "") and "Evicted" in (
            final.state_message or ""
        )


def running_pod(h: Harness, run_id: str) -> str:
    """The name of the run's pod once its container runs."""
    name = h.job_of(run_id)["metadata"]["name"]

    def running() -> str | None:
        for pod in h.cluster.pods.values():
            if pod["metadata"]["labels"].get("job-name") == name and pod["status"]["phase"] == "Running":
                return str(pod["metadata"]["name"])
        return None

    return str(h.cluster.wait_for(running))


def test_a_dropped_log_stream_resumes_without_losing_or_doubling_a_line(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        h.cluster.cut_next_log_stream(50)
        h.cluster.cut_next_log_stream(70)
        run = h.run(h.deploy("counting", parameters={"n": 300}))
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "COMPLETED", final.state_message
        lines = [line for line in h.logs(run.id) if line.startswith("line ")]
        assert lines == [f"line {i:04d}" for i in range(300)]
        log_requests = [path for method, path in h.cluster.requests if "/log" in path]
        assert len(log_requests) >= 3 and "sinceTime=" in log_requests[1]


def test_dropped_watches_change_no_state(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy", parameters={"seconds": 2}))
        h.start_worker()
        wait_for(lambda: "sleeping" in h.logs(run.id))
        for _ in range(3):
            h.cluster.drop_watches()
            h.server.expire_history()
            time.sleep(0.3)
            assert h.state(run.id).state == "RUNNING"
        final = h.wait_final(run.id)
        assert final.state == "COMPLETED", final.state_message


def test_watch_timeouts_change_no_state(tmp_path: Path) -> None:
    """Every watch request ends after 1 s (the server's timeoutSeconds); a 3 s run still completes."""
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy", parameters={"seconds": 3}))
        h.start_worker(executor=h.executor(watch_seconds=1))
        final = h.wait_final(run.id)
        assert final.state == "COMPLETED", final.state_message
        watches = [p for m, p in h.cluster.requests if "watch=" in p]
        assert len(watches) >= 4


def test_pod_watch_timeout_crashes_a_run_whose_pod_never_starts_with_the_pods_reason(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        h.cluster.held_images.add(IMAGE)  # the pull never finishes: ContainerCreating
        run = h.run(h.deploy("hello", job_variables={"pod_watch_timeout_seconds": 1}))
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "CRASHED"
        assert "did not start within 1 s" in (final.state_message or "")
        assert "ContainerCreating" in (final.state_message or "")
        assert h.cluster.jobs == {}


def test_job_watch_timeout_fails_a_run_that_runs_too_long(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy", job_variables={"job_watch_timeout_seconds": 2}))
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "FAILED"
        assert final.state_message is not None and "timed out after 2 s" in final.state_message
        assert [d.propagation for d in h.cluster.deletes] == ["Foreground"]


def test_a_long_pull_within_the_pod_watch_timeout_is_not_a_failure(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        h.cluster.held_images.add(IMAGE)
        run = h.run(h.deploy("hello", job_variables={"pod_watch_timeout_seconds": 30}))
        h.start_worker()
        time.sleep(1.5)
        assert h.state(run.id).state == "PENDING"
        with h.cluster.cond:
            h.cluster.held_images.clear()
        assert h.wait_final(run.id).state == "COMPLETED"


def test_a_killed_worker_restarted_reattaches_to_its_job_and_keeps_the_logs_whole(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("counting", parameters={"n": 100, "pause": 0.1}))
        env = {
            **os.environ,
            "KUBECONFIG": str(h.kubeconfig),
            "WP_DATABASE_URL": f"sqlite:///{tmp_path / 'wp.db'}",
            "WP_HOME": str(tmp_path / "home"),
        }
        first = subprocess.Popen(
            ["wp", "worker", "start", "--pool", "k8s", "--name", "kw1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: sum(line.startswith("line ") for line in h.logs(run.id)) > 5, timeout=60)
        finally:
            first.kill()  # SIGKILL: the worker deletes nothing and says nothing
            first.wait()
        assert h.state(run.id).state == "RUNNING"
        job_id = h.state(run.id).infrastructure_id
        assert job_id and job_id.startswith("default/")
        h.start_worker(name="kw1")
        final = h.wait_final(run.id)
        assert final.state == "COMPLETED", final.state_message
        lines = [line for line in h.logs(run.id) if line.startswith("line ")]
        assert lines == [f"line {i:04d}" for i in range(100)]
        assert any("re-attached" in line for line in h.logs(run.id))
        assert len(h.cluster.created_jobs) == 1


def test_reattach_follows_only_the_runs_own_job_and_none_that_is_gone(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        run = h.run(h.deploy("sleepy"))
        worker = h.start_worker(executor=h.executor())
        wait_for(lambda: "sleeping" in h.logs(run.id))
        executor = h.executor()
        assert executor.reattach(h.state(run.id), "default/no-such-job") is None
        other = h.state(run.id).model_copy(update={"id": "00000000-0000-0000-0000-000000000000"})
        assert executor.reattach(other, h.state(run.id).infrastructure_id or "") is None  # not this run's job
        # no id recorded (the worker died between creating the Job and storing its id): found by its label
        found = executor.reattach(h.state(run.id), "")
        assert found is not None and found.id == h.state(run.id).infrastructure_id
        found.close()
        assert executor.reattach(other, "") is None
        assert worker is not None


def test_a_missing_secret_fails_the_run_with_create_container_config_error(tmp_path: Path) -> None:
    template = kubernetes_pool().base_job_template
    assert template is not None
    manifest = template.job_configuration["job_manifest"]
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    ]
    with harness(tmp_path, pool=kubernetes_pool(template.model_dump())) as h:
        run = h.run(h.deploy("hello"))
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "FAILED"
        assert 'CreateContainerConfigError: secret "db" not found' in (final.state_message or "")
        container = h.cluster.created_jobs[0]["spec"]["template"]["spec"]["containers"][0]
        assert container["env"][0] == {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
        }


def test_a_pool_without_an_image_runs_the_workers_default_image_in_the_job_explain_shows(
    tmp_path: Path,
) -> None:
    """No image anywhere: the Job runs the worker's $WP_DOCKER_IMAGE (the Docker executor's rule), and the
    Job `wp explain` previews is the one submitted, but for the run's own id and name."""
    from reconciler.engine.job_templates import default_base_job_template
    from reconciler.runtime.submission import PREVIEW_RUN_ID, PREVIEW_RUN_NAME, preview

    pool_without_image = kubernetes_pool(default_base_job_template("kubernetes").model_dump())
    with harness(tmp_path, pool=pool_without_image) as h:
        deployment = h.deploy(
            "hello", job_variables={"env": {"GREETING": "hi"}, "labels": {"owner": "Jane Doe"}}
        )
        run = h.run(deployment)
        h.start_worker(env={"WP_DOCKER_IMAGE": IMAGE})
        final = h.wait_final(run.id)
        assert final.state == "COMPLETED", (final.state_message, h.logs(run.id))
        assert h.server.rejected == []
        submitted = h.cluster.created_jobs[0]
        assert submitted["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
        pool = h.store.get_work_pool("k8s")
        explained = preview(pool, h.store.get_deployment(deployment.flow, "d"), {"WP_DOCKER_IMAGE": IMAGE})
        body = explained["job_manifest"]
        wp_run_values = {PREVIEW_RUN_ID: run.id, PREVIEW_RUN_NAME: run.name, "worker-name": "kw1"}

        def as_run(value: object) -> object:
            if isinstance(value, dict):
                return {k: as_run(v) for k, v in value.items()}
            if isinstance(value, list):
                return [as_run(v) for v in value]
            for placeholder, actual in wp_run_values.items():
                if isinstance(value, str) and placeholder in value:
                    return value.replace(placeholder, actual)
            return value

        expected = as_run(body)
        submitted_container = submitted["spec"]["template"]["spec"]["containers"][0]
        expected_container = expected["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        runner_code = {e["name"]: e["value"] for e in submitted_container["env"]}["WP_RUNNER_CODE"]
        for entry in expected_container["env"]:
            if entry["name"] == "WP_RUNNER_CODE":
                assert entry["value"] == f"(wp's container runner, {len(runner_code)} characters)"
                entry["value"] = runner_code
        assert expected == submitted


def test_code_missing_from_the_image_fails_the_run_naming_the_deployment_and_the_fix(tmp_path: Path) -> None:
    """A container run of a deployment without pull steps expects its code in the image; when it is not there
    the run says which deployment, where it looked and how to fix it."""
    with harness(tmp_path) as h:
        absent = h.deploy("hello", entrypoint="flows/etl.py:etl")
        run = h.run(absent)
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "FAILED"
        message = final.state_message or ""
        assert "deployment hello/d" in message
        assert "entrypoint file 'flows/etl.py' not found" in message
        assert "has no pull steps, so its code must be in the image" in message
        assert "git_clone" in message


def test_a_directory_recorded_on_the_planning_machine_fails_in_a_container_saying_so(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        recorded = {"prefect.deployments.steps.set_working_directory": {"directory": "/home/ana/etl-project"}}
        run = h.run(h.deploy("hello", pull_steps=(recorded,)))
        h.start_worker()
        final = h.wait_final(run.id)
        assert final.state == "FAILED"
        message = final.state_message or ""
        assert "deployment hello/d" in message
        assert "'/home/ana/etl-project' does not exist in this container" in message
        assert "git_clone" in message
