"""The console in a real browser: Debian's Chromium driven by Selenium (the system
chromedriver; nothing is downloaded) against a real ``fgd serve`` subprocess on 127.0.0.1,
embedded SQLite, real git repositories (one behind a slow smart-HTTP server, so a sync runs
long enough to be watched and cancelled).

One browser session walks through the steps in order. Every page is saved as a PNG under
``tests/artifacts/console/`` (git-ignored; the path is printed) — look at them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fgd_core.adapters.persistence import persistence_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from tests.gitserver import GitHTTPServer, init_bare, seed_repo
from tests.integration.test_console import BAD_VPC
from tests.resources import vpc

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"

# Never skipped: without the browser the tests fail saying what to install (.ci/run installs it).
BROWSER_MISSING = ("Debian's chromium and chromium-driver are needed: "
                   "apt-get install -y chromium chromium-driver (.ci/run does it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Console:
    url: str
    driver: Any
    git: GitHTTPServer
    repo_url: str
    slow_repo_url: str
    admin: str
    viewer: str
    shots: list[Path] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / f"{len(self.shots) + 1:02d}-{name}.png"
        # the whole page, not only the window
        size = self.driver.get_window_size()
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(size["width"], max(600, min(int(height) + 140, 4000)))
        self.driver.save_screenshot(str(target))
        self.driver.set_window_size(size["width"], size["height"])
        self.shots.append(target)

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def wait(self, condition: Any, timeout: float = 30) -> Any:
        # a page that reloads (the sync page does when the sync ends) invalidates elements
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(StaleElementReferenceException,
                                                 NoSuchElementException)).until(condition)

    def console_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def post_from_page(self, path: str, fields: dict[str, str]) -> int:
        """A POST the page's own script could forge (same origin, the session cookie)."""
        return int(self.driver.execute_async_script(
            """const [path, fields, done] = arguments;
               fetch(path, {method: 'POST', body: new URLSearchParams(fields),
                            redirect: 'manual'}).then(r => done(r.status));""",
            path, fields,
        ))

    def sign_in(self, key: str) -> None:
        self.open("/ui/login")
        self.find("#token").send_keys(key)
        self.find("form[action='/ui/login'] button").click()
        self.wait(lambda d: d.current_url.endswith("/ui/"))


def start_server(tmp: Path, environ: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    fgd = Path(sys.executable).parent / "fgd"
    command = [str(fgd)] if fgd.exists() else [sys.executable, "-m", "fgd_core.cli"]
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115 — closed with the process
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, **environ}, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp / "serve.log").read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/plugins/hedgehog/health/").is_success:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("fgd serve did not come up")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    files = {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1) + b"---\n" + vpc("vpc-2", 2),
             "gitops/raw/bad.yaml": BAD_VPC}
    local = init_bare(tmp / "lab.git")
    seed_repo(local, files)
    git = GitHTTPServer(tmp / "srv").start()
    seed_repo(init_bare(git.root / "slow.git"), files)
    environ = {
        "HOME": str(tmp),
        "HEDGEHOG_FGD_SQLITE_PATH": str(tmp / "fgd.sqlite3"),
        "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": f"{tmp}/,{git.url()}",
    }
    app = FGDApplication(env=persistence_env(None, tmp / "fgd.sqlite3"))
    admin, _ = create_token(app, "admin", superuser=True)
    viewer, _ = create_token(app, "viewer", permissions=["view_fgd_sync", "view_fgd_history"],
                             fabrics=[1])
    app.close()
    port = free_port()
    server = start_server(tmp, environ, port)
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), BROWSER_MISSING
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    c = Console(f"http://127.0.0.1:{port}", driver, git, str(local), git.url("slow.git"),
                admin, viewer)
    try:
        yield c
    finally:
        print(f"\nconsole screenshots: {ARTIFACTS}")
        driver.quit()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        git.stop()


@pytest.fixture(scope="module", autouse=True)
def fresh_artifacts() -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)


def test_sign_in_and_register_a_fabric(console: Console) -> None:
    console.open("/")
    console.wait(lambda d: "/ui/login" in d.current_url)
    console.shot("sign-in")
    console.sign_in(console.admin)
    console.find("#f-name").send_keys("lab")
    console.find("#f-repository").send_keys(console.slow_repo_url)
    console.shot("fabrics-register")
    console.find("form[action='/ui/fabrics/'] button").click()
    console.wait(lambda d: d.current_url.endswith("/ui/fabrics/1/"))
    assert console.find("h1").text.startswith("lab")
    console.shot("fabric")
    assert console.console_errors() == []
    # Registration started the fabric's first (fabric_created) sync: the tests below start
    # their own, so they wait for it to end.
    headers = {"Authorization": f"Token {console.admin}"}

    def first_sync_ended() -> bool:
        fabric = httpx.get(f"{console.url}/api/plugins/hedgehog/fabrics/1/",
                           headers=headers).json()
        return fabric["running_sync_id"] is None and fabric["last_sync_status"] is not None

    deadline = time.monotonic() + 60
    while not first_sync_ended():
        assert time.monotonic() < deadline, "the fabric_created sync did not end"
        time.sleep(0.2)


def test_trigger_a_sync_and_watch_it_complete_live(console: Console) -> None:
    console.git.latency = 0.6  # each git request: the sync runs for a few seconds
    console.open("/ui/fabrics/1/")
    # The first sync ingested every file already: a new one for this sync to push (slowly),
    # and force refresh so that the failed file is planned (and shown) again.
    seed_repo(Path(console.git.root / "slow.git"), {"gitops/raw/more.yaml": vpc("vpc-9", 9)})
    console.find("#force_refresh").click()
    console.find("#trigger-sync").click()
    console.wait(lambda d: "/ui/syncs/" in d.current_url)
    console.state["sync_url"] = console.driver.current_url
    assert console.find("#sync").get_attribute("data-live") == "yes"
    seen: set[str] = set()

    def finished(driver: Any) -> bool:
        try:
            text = driver.find_element(By.ID, "live-status").text
            seen.add(text)
            state = driver.find_element(By.ID, "sync-state").get_attribute("data-state")
        except WebDriverException:  # stale, detached or missing: the page is reloading
            return False
        return state in ("completed", "failed") and text == "Finished."

    live_shot = False
    deadline = time.monotonic() + 40
    while not finished(console.driver):
        if not live_shot and any(t.startswith("Live: processing") for t in seen):
            console.shot("sync-live")
            live_shot = True
        assert time.monotonic() < deadline, (seen, console.console_errors())
        time.sleep(0.05)
    console.git.latency = 0.0
    # The WebSocket drove the page: progress messages, then the final one (then a reload).
    assert any(t.startswith("Live: processing") for t in seen), (seen, console.console_errors())
    console.shot("sync-finished")
    row = console.find("tr[data-path='/gitops/raw/bad.yaml']").text
    assert "line 9" in row and "spec.subnets.default.vlan" in row, row
    assert "processed" in console.find("tr[data-path='/gitops/raw/more.yaml']").text
    stages = [li.get_attribute("class") for li in console.all("#timeline li")]
    assert stages and all("stage-done" in s for s in stages), stages
    assert console.console_errors() == []


def test_validate_only_sync_shows_its_plan(console: Console) -> None:
    seed_repo(Path(console.git.root / "slow.git"),
              {"gitops/raw/more.yaml": vpc("vpc-3", 3)}, message="more")
    console.open("/ui/fabrics/1/")
    console.find("#validate_only").click()
    console.find("#trigger-sync").click()
    console.wait(lambda d: "/ui/syncs/" in d.current_url)
    console.wait(lambda d: d.find_elements(By.ID, "plan-h"), timeout=40)
    for summary in console.all("details.diff summary"):
        summary.click()
    assert "vpc-3" in console.find("details.diff pre").text
    console.shot("sync-validate-only-plan")
    assert console.console_errors() == []


def test_cancel_a_running_sync(console: Console) -> None:
    console.git.latency = 2.0
    try:
        console.open("/ui/fabrics/1/")
        console.find("#trigger-sync").click()
        console.wait(lambda d: "/ui/syncs/" in d.current_url)
        console.wait(lambda d: d.find_elements(By.ID, "cancel-sync"))
        console.find("#cancel-sync").click()
        console.wait(
            lambda d: d.find_element(By.ID, "sync-state").get_attribute("data-state")
            == "cancelled"
        )
        console.shot("sync-cancelled")
    finally:
        console.git.latency = 0.0
    assert console.all("#cancel-sync") == []
    assert "stopped" in console.find("#timeline").text
    assert console.console_errors() == []


def test_page_through_history_and_other_pages(console: Console) -> None:
    console.open("/ui/fabrics/1/?limit=1")
    first = console.find("table.history tbody tr").text
    assert "cancelled" in first
    console.find("a[rel='next']").click()
    console.wait(lambda d: "offset=1" in d.current_url)
    second = console.find("table.history tbody tr").text
    assert second != first and "completed" in second
    console.find("a[rel='next']").click()
    console.wait(lambda d: "offset=2" in d.current_url)
    console.shot("fabric-history-page-3")
    console.find("a[rel='prev']").click()
    console.wait(lambda d: "offset=1" in d.current_url)
    # the status filter
    console.open("/ui/fabrics/1/")
    console.find("#h-status option[value='cancelled']").click()
    console.find("form.filters button").click()
    console.wait(lambda d: "status=cancelled" in d.current_url)
    rows = console.all("table.history tbody tr")
    assert len(rows) == 1 and "cancelled" in rows[0].text
    # a directory operation answers on the fabric page
    console.open("/ui/fabrics/1/")
    console.find("form[action$='/directory/validate/'] button").click()
    console.wait(lambda d: d.find_elements(By.ID, "result-h"))
    assert "Directory validate" in console.find("#result-h").text
    console.shot("fabric-directory-validated")
    console.open("/ui/fabrics/1/edit/")
    console.shot("fabric-edit")
    console.open("/ui/fabrics/1/files/?directory=raw&path=/gitops/raw/bad.yaml")
    assert "notanumber" in console.find("pre.content").text
    console.shot("files")
    console.open("/ui/")
    assert "lab" in console.find("table.fabrics").text
    console.shot("fabrics")
    console.open("/ui/audit/")
    assert "trigger_sync" in console.find("table.audit").text
    console.shot("audit")
    console.open("/ui/system/")
    assert "database" in console.find("table.health").text
    console.shot("system")
    console.driver.set_window_size(390, 844)  # a phone
    console.open(console.state["sync_url"].removeprefix(console.url))
    console.shot("sync-phone")
    console.open("/ui/fabrics/1/")
    console.shot("fabric-phone")
    console.driver.set_window_size(1280, 900)
    assert console.console_errors() == []


def test_a_token_without_permission_sees_no_buttons_and_is_refused(console: Console) -> None:
    console.open("/ui/")
    console.find("form.signout button").click()
    console.wait(lambda d: "/ui/login" in d.current_url)
    console.sign_in(console.viewer)
    console.open("/ui/fabrics/1/")
    console.shot("fabric-viewer")
    assert console.all("#trigger-sync") == []
    assert console.all("form[action*='/sync/'], form[action*='initialize']") == []
    assert console.all("a[href$='/edit/']") == []
    csrf = console.find("form.signout input[name='csrf_token']").get_attribute("value")
    assert console.console_errors() == []
    # A forged POST with a valid CSRF token: refused by the permission check (and audited).
    assert console.post_from_page("/ui/fabrics/1/sync/", {"csrf_token": csrf}) == 403
    # Without the CSRF token: refused before anything else.
    console.driver.get_log("browser")  # the two 403s above are logged by the browser itself
    console.sign_in(console.admin)
    assert console.post_from_page("/ui/fabrics/1/sync/", {}) == 403
    errors = console.console_errors()
    assert all("403" in e["message"] for e in errors), errors
    # the audit log is a read model: the denial shows once the projection has caught up

    def denial_listed(driver: Any) -> bool:
        console.open("/ui/audit/?user=viewer")
        return "denied" in console.find("table.audit").text

    console.wait(denial_listed, timeout=15)
    console.shot("audit-denied")
    console.open("/ui/fabrics/1/?limit=10")  # neither POST started a sync
    assert len(console.all("table.history tbody tr")) == 4  # fabric_created + the tests' 3
