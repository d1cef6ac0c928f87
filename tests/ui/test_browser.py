"""The web UI in a real headless Chromium against a real `wp server start` (API key set) with a real
`wp worker start` running real flow processes: what a user sees and does.

One server, one worker and one browser serve the whole module (starting them is most of the cost); each
test leaves the pools as it found them. Set WP_UI_SCREENSHOTS=DIR to save screenshots of the main pages
(the README's come from here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_browser import requested_urls, require_chromium, start_browser, wait_until
from wp_cli import run_wp

from reconciler.model import FlowRun, WorkPool
from reconciler.store.client import HttpStore
from tests.wp_server import free_port

# one server, worker and browser for the module: keep its tests on one xdist worker (`--dist loadgroup`)
pytestmark = [pytest.mark.xdist_group("ui-browser"), pytest.mark.slow]

KEY = "ui-browser-key"
REPO = Path(__file__).resolve().parents[2]
WP = str(Path(sys.executable).parent / "wp")

FLOWS = textwrap.dedent(
    """
    import time

    def work(seconds=0.0):
        print("working", flush=True)
        time.sleep(seconds)

    def chatty(lines=3, every=0.2, api_token=None):
        for i in range(lines):
            print(f"line {i}", flush=True)
            time.sleep(every)
    """
)
PROJECT = """
project: uitest
work_pools:
  - name: p
    type: process
    concurrency_limit: 4
    queues:
      - {name: low, priority: 5, description: batch work}
  - name: hb
    type: process
deployments:
  - name: talk
    entrypoint: flows/work.py:chatty
    work_pool: {name: p}
    parameters: {lines: 3, api_token: not-for-your-eyes}
    description: Prints a few lines, slowly.
    schedules:
      - {slug: nightly, cron: "0 3 * * *", timezone: Europe/Berlin}
  - name: low
    entrypoint: flows/work.py:work
    work_pool: {name: p, work_queue_name: low}
"""
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | extra


@dataclass
class Env:
    root: Path
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    driver: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> HttpStore:
        return HttpStore(self.url, api_key=KEY)

    def start(self, *argv: str, log: str, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [WP, *argv],
            env=_env(**env),
            cwd=self.root,
            stdout=(self.root / f"{log}.log").open("a"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def start_worker(self, pool: str, name: str, heartbeat: float = 1.0) -> subprocess.Popen[str]:
        return self.start(
            "worker", "start", "--pool", pool, "--name", name, "--poll-interval", "0.1",
            "--heartbeat-interval", str(heartbeat), log=name, WP_API_URL=self.url, WP_API_KEY=KEY,
        )  # fmt: skip

    def page(self, path: str) -> Any:
        """Open a UI page, logging in first if the server asks."""
        self.driver.get(self.url + path)
        if "/ui/login" in self.driver.current_url:
            log_in(self.driver, KEY)
            wait_until(self.driver, lambda d: "/ui/login" not in d.current_url, "the login is accepted")
        self.driver.execute_script("window.__notReloaded = true")
        return self.driver

    def not_reloaded(self) -> bool:
        return bool(self.driver.execute_script("return window.__notReloaded === true"))

    def shot(self, name: str) -> None:
        folder = os.environ.get("WP_UI_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def log_in(driver: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_chromium()  # skips (or fails under CI) before anything is started
    root = tmp_path_factory.mktemp("ui")
    (root / "flows").mkdir()
    (root / "flows" / "work.py").write_text(FLOWS)
    (root / "wp.yaml").write_text(PROJECT)
    env = Env(root)
    browser: Generator[Any, None, None] | None = None
    try:
        server = env.start(
            "server", "start", "--host", "127.0.0.1", "--port", str(env.port), log="server",
            WP_HOME=str(root / "home"), WP_API_KEY=KEY,
        )  # fmt: skip
        browser = start_browser()
        env.driver = next(browser)  # the browser starts while the server boots

        def healthy() -> bool:
            assert server.poll() is None, (root / "server.log").read_text()
            try:
                return httpx.get(f"{env.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        deadline = time.monotonic() + 30
        while not healthy():
            assert time.monotonic() < deadline, "the wp server did not answer /health"
            time.sleep(0.1)
        applied = run_wp("apply", root, "--auto-approve", env={"WP_API_URL": env.url, "WP_API_KEY": KEY})
        assert applied.code == 0, applied.stderr
        env.start_worker("p", "ui-worker")
        env.api.create_work_pool(WorkPool(name="idle", description="made by hand"))
        yield env
    finally:
        for proc in env.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if browser is not None:
            browser.close()


def run_of(api: HttpStore, deployment: str, pool: str, queue: str, at: datetime, **params: Any) -> FlowRun:
    run_id = str(uuid.uuid4())
    return api.create_flow_run(
        FlowRun(
            id=run_id,
            name=f"ui-{run_id[:6]}",
            flow=deployment.split("/")[0],
            deployment=deployment,
            work_pool=pool,
            work_queue=queue,
            state="SCHEDULED",
            expected_start_time=at,
            parameters=params,
        )
    )


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def text_of(selector: str) -> Callable[[Any], str | bool]:
    """A wait condition: the element's text, once it exists (live regions are swapped under us)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    def check(driver: Any) -> str | bool:
        try:
            return str(css(driver, selector).text) or False
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    return check


def click(driver: Any, selector: str) -> None:
    """Click, retrying if a live update replaced the element between finding and clicking it."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            css(driver, selector).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"{selector} kept changing under the click")


def history_of(driver: Any) -> tuple[list[str], str]:
    """The run page's state history: the states changed to, in order, and the section's text."""
    return (
        driver.execute_script(
            "return [...document.querySelectorAll('#state-history li[data-to]')].map(li => li.dataset.to)"
        ),
        driver.execute_script("return document.querySelector('#state-history').innerText"),
    )


def status_becomes(selector: str, wanted: str) -> Callable[[Any], bool]:
    check = text_of(selector)
    return lambda d: check(d) == wanted


# ------------------------------------------------------------------------------------------------ tests


def test_nothing_works_before_logging_in_and_a_forged_action_is_refused(ui: Env) -> None:
    driver = ui.driver
    driver.delete_all_cookies()
    driver.get(ui.url + "/ui/pools/idle")
    assert "/ui/login" in driver.current_url
    assert "idle" not in css(driver, "main").text  # nothing of the store shows before the key
    log_in(driver, "not-the-key")
    wait_until(driver, text_of(".error"), "the login page says the key is wrong")
    assert "not the server's API key" in css(driver, ".error").text
    log_in(driver, KEY)
    wait_until(
        driver, lambda d: d.current_url.endswith("/ui/pools/idle"), "login returns to the page asked for"
    )
    # a request without the page's CSRF token (what a foreign page could make the browser send) is refused
    status = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/ui/actions/pools/idle/pause', {method: 'POST', credentials: 'same-origin'})"
        ".then(r => done(r.status));"
    )
    assert status == 403
    assert ui.api.get_work_pool("idle").paused is False
    click(driver, "form.logout button")
    wait_until(driver, lambda d: "/ui/login" in d.current_url, "logout shows the login page")
    driver.get(ui.url + "/ui/runs")
    assert "/ui/login" in driver.current_url


def test_pools_show_status_type_slots_and_owner_and_pausing_in_the_ui_pauses_the_store(ui: Env) -> None:
    driver = ui.page("/ui/pools")
    row = 'tr[data-pool="p"]'
    wait_until(driver, status_becomes(f'{row} td[data-field="status"]', "READY"), "pool p shows READY")
    cells = css(driver, row).text
    assert "process" in cells and "0 / 4" in cells and "uitest" in cells
    assert (
        "NOT READY" in css(driver, 'tr[data-pool="hb"]').text
        and "by hand" in css(driver, 'tr[data-pool="idle"]').text
    )
    ui.shot("pools")
    click(driver, f"{row} .actions button")
    wait_until(driver, status_becomes(f'{row} td[data-field="status"]', "PAUSED"), "pool p shows PAUSED")
    assert ui.api.get_work_pool("p").paused is True
    assert ui.api.work_pool_status("p", datetime.now(UTC)) == "PAUSED"
    click(driver, f"{row} .actions button")
    wait_until(driver, status_becomes(f'{row} td[data-field="status"]', "READY"), "pool p shows READY again")
    assert ui.api.get_work_pool("p").paused is False
    assert ui.not_reloaded()


def test_a_pool_turns_ready_when_a_worker_heartbeats_and_not_ready_when_it_stops(ui: Env) -> None:
    driver = ui.page("/ui/pools/hb")
    assert css(driver, "#pool-status").text == "NOT READY"
    assert css(driver, "#worker-command").text == "wp worker start --pool hb"
    worker = ui.start_worker("hb", "hb-worker", heartbeat=0.5)
    try:
        wait_until(driver, status_becomes("#pool-status", "READY"), "the pool page shows READY")
        wait_until(driver, text_of('tr[data-worker="hb-worker"]'), "the worker is listed")
        assert "ONLINE" in css(driver, 'tr[data-worker="hb-worker"]').text
        assert not driver.find_elements("id", "worker-command")  # the hint goes once a worker is there
    finally:
        stop(worker)
    wait_until(driver, status_becomes("#pool-status", "NOT READY"), "the pool page shows NOT READY")
    assert "OFFLINE" in css(driver, 'tr[data-worker="hb-worker"]').text
    assert ui.not_reloaded()


def test_a_queue_paused_in_the_ui_holds_its_work_while_a_run_triggered_in_the_ui_completes_live(
    ui: Env,
) -> None:
    driver = ui.page("/ui/pools/p")
    queue = 'tr[data-queue="low"]'
    shown = [e.get_attribute("data-queue") for e in driver.find_elements("css selector", "tr[data-queue]")]
    by_priority = sorted(ui.api.list_work_queues("p"), key=lambda q: q.priority or 0)
    assert shown == [q.name for q in by_priority] and set(shown) == {"low", "default"}
    click(driver, f"{queue} .actions button")
    wait_until(driver, status_becomes(f'{queue} td[data-field="status"]', "PAUSED"), "queue low shows PAUSED")
    assert ui.api.get_work_queue("p", "low").paused is True
    held = run_of(ui.api, "work/low", "p", "low", datetime.now(UTC))
    try:
        driver = ui.page("/ui/deployments/chatty/talk")
        css(driver, "#parameters").send_keys('{"lines": 5, "every": 0.3}')
        click(driver, "#trigger button[type=submit]")
        wait_until(driver, lambda d: "/ui/runs/" in d.current_url, "the new run's page opens")
        driver.execute_script("window.__notReloaded = true")
        wait_until(
            driver, lambda d: "line 0" in css(d, "#log").text, "the first log line appears", timeout=30
        )
        wait_until(driver, lambda d: "line 4" in css(d, "#log").text, "the last log line appears", timeout=30)
        wait_until(driver, text_of("#run-state .st-completed"), "the run shows COMPLETED", timeout=30)
        wait_until(
            driver,
            lambda d: history_of(d)[0] == ["PENDING", "RUNNING", "COMPLETED"],
            "the state history shows each change, live",
        )
        assert ui.not_reloaded()
        assert "line 4" in css(driver, "#log").text
        text = history_of(driver)[1]
        assert "Created" in text and "SCHEDULED → PENDING" in " ".join(text.split())
        assert text.count("by worker ") == 3  # the worker claimed, started and finished it
        ui.shot("run")
        # all the while the paused queue held its run
        assert ui.api.get_flow_run(held.id).state in ("SCHEDULED", "LATE")
    finally:
        driver = ui.page("/ui/pools/p")
        click(driver, f"{queue} .actions button")
        wait_until(driver, lambda d: ui.api.get_work_queue("p", "low").paused is False, "queue low resumes")
    wait_until(driver, lambda d: ui.api.get_flow_run(held.id).state == "COMPLETED", "the held run completes")


def test_cancelling_in_the_ui_stops_a_running_run(ui: Env) -> None:
    run = run_of(ui.api, "chatty/talk", "p", "default", datetime.now(UTC), lines=400, every=0.1)
    driver = ui.page(f"/ui/runs/{run.id}")
    wait_until(driver, text_of("#run-state .st-running"), "the run shows RUNNING", timeout=30)
    wait_until(driver, lambda d: "line 1" in css(d, "#log").text, "its output appears")
    click(driver, "#run-summary .actions button.danger")
    driver.switch_to.alert.accept()
    wait_until(driver, text_of("#run-state .st-cancelled"), "the run shows CANCELLED", timeout=30)
    assert ui.api.get_flow_run(run.id).state == "CANCELLED"
    wait_until(driver, lambda d: history_of(d)[0][-2:] == ["CANCELLING", "CANCELLED"], "the history shows it")
    text = " ".join(history_of(driver)[1].split())
    assert "RUNNING → CANCELLING by web UI" in text and "cancelled from the web UI" in text
    printed = len(ui.api.read_logs(run.id, limit=10_000))
    time.sleep(1.0)
    assert len(ui.api.read_logs(run.id, limit=10_000)) == printed  # the process is gone: no more output
    assert printed < 400


def test_a_late_run_is_marked(ui: Env) -> None:
    late = run_of(ui.api, "work/low", "idle", "default", datetime.now(UTC) - timedelta(minutes=2))
    driver = ui.page("/ui/runs?pool=idle")
    row = css(driver, f'tr[data-run="{late.id}"]')
    assert "LATE" in row.text and "late" in (row.get_attribute("class") or "")
    driver = ui.page("/ui/pools")
    wait_until(driver, lambda d: "1 late" in css(d, 'tr[data-pool="idle"]').text, "the pools page counts it")
    ui.api.set_run_state(late.id, "CANCELLED", now=datetime.now(UTC))


def test_a_managed_pool_offers_no_edit_and_a_handmade_one_does(ui: Env) -> None:
    driver = ui.page("/ui/pools/p")
    note = css(driver, ".managed").text
    assert "Managed by project uitest" in note and "change it in git" in note
    assert not driver.find_elements("id", "edit-pool")
    ui.shot("pool")
    driver = ui.page("/ui/pools/idle")
    assert not driver.find_elements("css selector", ".managed")
    limit = css(driver, "#concurrency_limit")
    limit.clear()
    limit.send_keys("7")
    click(driver, "#edit-pool button[type=submit]")
    wait_until(
        driver, lambda d: ui.api.get_work_pool("idle").concurrency_limit == 7, "the edit reaches the store"
    )
    wait_until(driver, text_of("#toast"), "the UI confirms")
    assert "Saved work pool idle" in css(driver, "#toast").text


def test_pages_work_on_a_phone_label_every_control_and_load_nothing_from_outside(ui: Env) -> None:
    driver = ui.driver
    ui.page("/ui/deployments/chatty/talk")
    wait_until(driver, lambda d: "03:00" in css(d, "#schedules").text or "02:00" in css(d, "#schedules").text,
               "the schedule's next runs show")  # fmt: skip
    ui.shot("deployment")
    ui.page("/ui/history")
    ui.shot("history")
    ui.page("/ui/runs")
    ui.shot("runs")
    pages = ["/ui/pools", "/ui/pools/p", "/ui/runs", "/ui/deployments", "/ui/deployments/chatty/talk"]
    pages += ["/ui/history", "/ui/sync"]
    unlabelled_script = """
        return [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
          .filter(e => e.tagName === 'BUTTON' ? !e.textContent.trim() && !e.getAttribute('aria-label')
                                              : !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
          .map(e => e.outerHTML);
    """
    try:
        for width in (1280, 390):
            driver.set_window_size(width, 900)
            for path in pages:
                ui.page(path)
                assert driver.execute_script(unlabelled_script) == [], path
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{path} scrolls sideways at {width} px"
        ui.page("/ui/pools/p")
        ui.shot("pool-phone")
    finally:
        driver.set_window_size(1280, 900)
    assert "not configured" in css(ui.page("/ui/sync"), "main").text
    assert (
        "hunter" not in driver.page_source
        and "not-for-your-eyes" not in ui.page("/ui/deployments/chatty/talk").page_source
    )
    urls = requested_urls(driver)
    assert urls, "the performance log recorded no request"
    # the browser's own pages (chrome://new-tab-page ...) are not network; anything that is must stay local
    network = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp")]
    assert any(u.startswith(ui.url + "/ui/") for u in network)
    assert [u for u in network if not u.startswith(ui.url + "/")] == []
    assert {u.split(":", 1)[0] for u in urls} <= {
        "http",
        "chrome",
        "chrome-untrusted",
        "data",
        "about",
        "blob",
    }
