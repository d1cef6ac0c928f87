"""No API answer carries a secret (issue 10 item 11), scanned end to end: a real `wp server start` and a real
`wp worker start` over HTTP run a flow that prints its secrets and raises with one; then every GET route of the
API (from its own OpenAPI document), every page of the web UI reachable by its links, and the CLI's views are
searched for each secret of the config, in clear and in the encodings a leak usually takes (JSON-escaped, base64,
URL-encoded, HTML-escaped). The worker-only call (`/flow_runs/{id}/inputs`) is the one exception, and it is
refused once the run is over. A plan through the server still sees a changed secret without reading it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, urljoin, urlparse

import httpx
import pytest
from test_runtime_scenarios import KEY, WP, Runtime, clean_env
from wp_cli import run_wp

from reconciler.shortcut import noop_key

PASSWORD = 'pw "Kx81"/é&+param'  # quotes, a slash, a non-ASCII letter, & and +: every encoding differs
TOKEN = "tok/env+Lm52=variable"  # given to wp plan through the environment: ${API_TOKEN}
SCHEDULE_SECRET = "sched-secret-Vq03"
POOL_DEFAULT = "pool-default-key-5150"
PULL_TOKEN = "ghp_pullSecret_9911"
# secret only by the project's own `secret_patterns` (no default pattern matches `vault_creds`)
OWN_PATTERN = "vault-creds-value-7788"
SECRETS = (PASSWORD, TOKEN, SCHEDULE_SECRET, POOL_DEFAULT, PULL_TOKEN, OWN_PATTERN)

FLOW = textwrap.dedent(
    """
    import hashlib, json, os

    def leak(db_password, who="world"):
        print("password " + db_password, flush=True)
        print("json " + json.dumps(db_password), flush=True)
        print("token " + os.environ.get("API_TOKEN", "-"), flush=True)
        print("default " + os.environ.get("API_KEY", "-"), flush=True)
        print("creds " + os.environ.get("VAULT_CREDS", "-"), flush=True)
        print("digest " + hashlib.sha256(db_password.encode()).hexdigest()[:12], flush=True)
        raise ValueError(f"login failed for {db_password!r}")
    """
)

CONFIG = """
project: scan
secret_patterns: ["*_creds"]
work_pools:
  - name: p
    type: process
    base_job_template:
      job_configuration:
        command: "{{{{ command }}}}"
        env: {{API_KEY: "{{{{ api_key }}}}", API_TOKEN: "{{{{ api_token }}}}", VAULT_CREDS: "{{{{ vault_creds }}}}"}}
      variables:
        type: object
        properties:
          command: {{type: string, default: ""}}
          api_key: {{type: string, default: "{pool_default}"}}
          api_token: {{type: string, default: ""}}
          vault_creds: {{type: string, default: "{own_pattern}"}}
deployments:
  - name: d
    entrypoint: flows/leak.py:leak
    parameters: {{db_password: {password}, who: world}}
    work_pool: {{name: p, job_variables: {{api_token: "${{API_TOKEN}}"}}}}
    schedules:
      - {{slug: hourly, interval: 3600, parameters: {{db_password: "{schedule_secret}"}}}}
  - name: cloner
    entrypoint: flows/leak.py:leak
    parameters: {{db_password: x}}
    pull:
      - git_clone: {{repository: "https://git.invalid/r.git", access_token: "{pull_token}"}}
    work_pool: {{name: p}}
"""


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
    }


FORMS = {form: secret for secret in SECRETS for form in _forms(secret)}


def _leaks(text: str) -> list[str]:
    return sorted({f"{FORMS[form]!r} as {form!r}" for form in FORMS if form in text})


@dataclass
class Scene:
    runtime: Runtime
    run_id: str  # a run the worker ran to FAILED
    noop_key: str  # where `wp apply` recorded the project's known no-op (`GET /plan-inputs/{key}`)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One server for the module: the config applied through it, and a run a worker ran from it."""
    tmp_path = tmp_path_factory.mktemp("secret-scan")
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "leak.py").write_text(FLOW)
    (root / "wp.yaml").write_text(
        CONFIG.format(
            password=json.dumps(PASSWORD),
            schedule_secret=SCHEDULE_SECRET,
            pool_default=POOL_DEFAULT,
            pull_token=PULL_TOKEN,
            own_pattern=OWN_PATTERN,
        )
    )
    rt = Runtime(root, {"WP_HOME": str(tmp_path / "home")})
    try:
        rt.start_server()
        applied = run_wp("apply", root, "--auto-approve", env={**rt.client_env(), "API_TOKEN": TOKEN})
        assert applied.code == 0, applied.stderr
        run_id = _new_run(rt)
        worker = rt.start_worker("w1", "--run-once")
        assert worker.wait(timeout=60) == 0, rt.worker_log("w1")
        yield Scene(rt, run_id, noop_key(root, None))
    finally:
        rt.close()


def _new_run(rt: Runtime) -> str:
    """A run made with `wp deployment run` through the server: the CLI read the deployment masked."""
    made = run_wp("deployment", "run", "leak/d", "--json", env=rt.client_env())
    assert made.code == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def _api_paths(client: httpx.Client, values: dict[str, str]) -> list[str]:
    # `values` by parameter name, or by "TEMPLATE:NAME" where one name means different things
    """Every GET route of the API's own OpenAPI document, with its path parameters filled in."""
    spec = client.get("/openapi.json").json()
    paths = []
    for template, operations in spec["paths"].items():
        if "get" not in operations:
            continue
        names = re.findall(r"{(\w+)}", template)
        filled = {n: values.get(f"{template}:{n}", values.get(n)) for n in names}
        if all(v is not None for v in filled.values()):
            paths.append(template.format(**filled))
        else:
            raise AssertionError(f"the scan does not know how to fill {template}: add its parameters")
    return paths


def _ui_pages(client: httpx.Client) -> dict[str, str]:
    """Every page of the web UI reachable from its start page by links, after logging in."""
    login = client.post("/ui/login", data={"key": KEY, "next": "/ui/pools"})
    assert login.status_code in (200, 303), login.text
    seen: dict[str, str] = {}
    todo = ["/ui/"]
    while todo and len(seen) < 80:
        path = todo.pop()
        if path in seen:
            continue
        answer = client.get(path, follow_redirects=True)
        seen[path] = answer.text
        for href in re.findall(r'(?:href|hx-get|data-url)="([^"#]+)"', answer.text):
            target = urlparse(urljoin(f"http://x{path}", html.unescape(href)))
            if target.path.startswith("/ui") and not target.path.startswith("/ui/static"):
                todo.append(target.path + (f"?{target.query}" if target.query else ""))
    return seen


def test_the_flow_got_its_secrets_and_the_store_got_them_masked(scene: Scene) -> None:
    runtime, run_id = scene.runtime, scene.run_id
    api = runtime.api()
    run = api.get_flow_run(run_id)
    assert run.state == "FAILED", runtime.worker_log("w1")
    assert run.state_message == "ValueError: login failed for '(sensitive)'"
    logs = [line.message for line in api.read_logs(run_id)]
    # the flow had the clear values: the worker's own read is unmasked
    assert f"digest {hashlib.sha256(PASSWORD.encode()).hexdigest()[:12]}" in logs, logs
    assert "password (sensitive)" in logs and "token (sensitive)" in logs and "default (sensitive)" in logs
    assert "creds (sensitive)" in logs  # masked by the project's own pattern, and the flow had the value


def test_a_plan_through_the_server_sees_a_changed_secret_it_never_reads(scene: Scene) -> None:
    runtime = scene.runtime
    env = {**runtime.client_env(), "API_TOKEN": TOKEN}
    unchanged = run_wp("plan", runtime.root, "--detailed-exitcode", env=env)
    assert unchanged.code == 0, unchanged.stdout + unchanged.stderr
    rotated = run_wp("plan", runtime.root, "--detailed-exitcode", env={**env, "API_TOKEN": "rotated-token-1"})
    assert rotated.code == 2 and "deployment.leak/d" in rotated.stdout, rotated.stdout
    assert "rotated-token-1" not in rotated.stdout


def test_no_api_answer_ui_page_or_cli_view_carries_a_secret(scene: Scene) -> None:
    runtime, run_id = scene.runtime, scene.run_id
    scanned: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=runtime.url, headers=headers, timeout=30) as client:
        values = {
            "flow": "leak",
            "name": "d",
            "/work_pools/{name}:name": "p",
            "/work_pools/{name}/status:name": "p",
            "/work_pools/{pool}/queues/{name}:name": "default",
            "/work_pools/{pool}/queues/{name}/status:name": "default",
            "run_id": run_id,
            "pool": "p",
            "lock_id": "none",
            "key": scene.noop_key,
        }
        for path in _api_paths(client, values):
            params = {"worker": "w1"} if path.endswith("/inputs") else {}
            if path == "/scheduled_runs/times":
                params = {"deployment": "leak/d", "after": "2000-01-01T00:00:00Z"}
            answer = client.get(path, params=params)
            scanned[f"GET {path}"] = answer.text
            if path.endswith("/inputs"):
                assert answer.status_code == 409, answer.text  # the run is over: no worker holds it
            else:
                assert answer.status_code in (200, 404, 422), (path, answer.status_code, answer.text)
        assert {
            "GET /deployments",
            "GET /snapshot",
            "GET /flow_runs",
            f"GET /flow_runs/{run_id}",
        } <= scanned.keys()
        keyed = client.get(
            "/snapshot", params={"keyed": "true", "only": ["deployment.leak/d", "work_pool.p"]}
        )
        scanned["GET /snapshot?keyed"] = keyed.text
        scanned |= {f"UI {path}": text for path, text in _ui_pages(client).items()}
    assert f"UI /ui/runs/{run_id}/logs" in scanned, sorted(scanned)

    for argv in (
        ("deployment", "inspect", "leak/d"),
        ("deployment", "inspect", "leak/d", "--json"),
        ("deployment", "ls"),
        ("flow-run", "inspect", run_id, "--json"),
        ("flow-run", "ls", "--json"),
        ("work-pool", "inspect", "p"),
        ("explain", "work_pool.p"),
        ("explain", "deployment.leak/d", "--json"),
        ("history",),
    ):
        shown = run_wp(*argv, env=runtime.client_env())
        assert shown.code == 0, shown.stderr
        scanned["wp " + " ".join(argv)] = shown.stdout + shown.stderr
    # a child process, not run_wp: the run's logs hold the flow's traceback, which run_wp refuses
    logs = subprocess.run(
        [WP, "flow-run", "logs", run_id],
        env=clean_env(**runtime.client_env()),
        capture_output=True,
        text=True,
    )
    assert logs.returncode == 0 and "ValueError" in logs.stdout, logs.stderr
    scanned["wp flow-run logs"] = logs.stdout + logs.stderr

    leaks = {where: found for where, text in scanned.items() if (found := _leaks(text))}
    assert not leaks, json.dumps(leaks, indent=1)
    assert len(scanned) > 30, sorted(scanned)  # the scan really covered the API, the UI and the CLI


def test_the_worker_reads_its_runs_inputs_and_nobody_else(scene: Scene) -> None:
    runtime = scene.runtime
    run_id = _new_run(runtime)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=runtime.url, headers=headers, timeout=30) as client:
        early = client.get(f"/flow_runs/{run_id}/inputs", params={"worker": "w1"})
        assert early.status_code == 409 and "w1" in early.text and PASSWORD not in early.text
        claimed = client.post(
            "/work_pools/p/claim",
            json={"worker": "w1", "limit": 1, "scheduled_before": "2999-01-01T00:00:00Z"},
        )
        assert [r["id"] for r in claimed.json()] == [run_id] and not _leaks(claimed.text)
        other = client.get(f"/flow_runs/{run_id}/inputs", params={"worker": "w2"})
        assert other.status_code == 409 and not _leaks(other.text)
        mine = client.get(f"/flow_runs/{run_id}/inputs", params={"worker": "w1"})
        assert mine.status_code == 200
        assert mine.json()["run"]["parameters"]["db_password"] == PASSWORD
        assert mine.json()["deployment"]["job_variables"]["api_token"] == TOKEN
