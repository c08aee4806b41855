"""The web console (/ui/) end to end in headless Chromium, against a real
`cloacinactl server start` on loopback with signed sample packages.

Run through tests/browser/run (which installs Chromium, Selenium and builds
the server). The scenario, in one browser session:

  1. /ui/ sends an unknown visitor to the login page; a wrong key is refused;
     the god (bootstrap) key signs in and lands on the overview.
  2. Packages: the signed `fan-out` sample is uploaded through the form,
     verified, and listed as loaded.
  3. Its workflow's page: invalid JSON disables Run; a valid context starts
     an execution, and the execution page follows it live (no reload) until
     it and every DAG node are completed.
  4. The `panic` sample, uploaded and run the same way, fails; its execution,
     opened from the executions list, shows the panic's message.
  5. Page timings: every page loaded afresh, time from navigation start to
     `data-ready="1"` (performance.now()), after N executions were started
     over the API (300 by default, 2,000 with --timings). Reported; the only
     assertion is a generous functional bound of 5 s per page.
  6. A read key made over the API: the console offers it no write action
     (upload, run, cancel), and the API refuses its crafted writes (403).
  7. Headers: /ui/ answers carry a CSP with `script-src 'self'`; a second
     server started with --no-console answers /ui/ with 404.
  8. The browser's console log holds no error other than the expected
     401/403 network errors.

--screenshots DIR also writes one PNG per page (1280x800; the overview also
390x844) into DIR: scripts/console-screenshots regenerates docs/console/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
CLOACINACTL = Path(os.environ.get("CLOACINACTL", TARGET / "debug" / "cloacinactl"))
TENANT = "public"

# The samples: a workflow with a fan-out DAG, and one whose task panics.
WORKFLOW_PACKAGE, WORKFLOW = "fan-out", "fan_out"
WORKFLOW_TASKS = {"split", "worker_a", "worker_b", "worker_c", "gather"}
PANIC_PACKAGE, PANIC_WORKFLOW, PANIC_TASK = "panic", "panic", "explode"
PANIC_REASON = "raised from the browser test"

WIDE = (1280, 800)
NARROW = (390, 844)
READY_BOUND_MS = 5000  # functional bound per page, not a performance target
CI_EXECUTIONS, TIMINGS_EXECUTIONS = 300, 2000

# Records, in every document the browser opens, each time the page becomes
# ready: performance.now() (from the navigation's start), page and hash.
READY_PROBE = """
(() => {
  window.__ready = [];
  const seen = () => {
    const main = document.querySelector('main#page');
    const ready = Boolean(main && main.dataset.ready === '1');
    if (ready && !window.__readyNow) {
      window.__ready.push({t: performance.now(), page: main.dataset.page || '', hash: location.hash});
    }
    window.__readyNow = ready;
  };
  new MutationObserver(seen).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-ready', 'data-page'],
  });
})();
"""


def log(message: str) -> None:
    print(message, flush=True)


# ---- the server ---------------------------------------------------------


class Server:
    """`cloacinactl server start` on a free loopback port, its log kept."""

    def __init__(self, home: Path, key: str, *extra: str) -> None:
        self.home, self.key, self.log = home, key, []
        args = [
            str(CLOACINACTL), "server", "start",
            "--bind", "127.0.0.1:0",
            "--home", str(home),
            "--bootstrap-key", key,
            "--shutdown-grace", "5",
            *extra,
        ]
        env = dict(os.environ, CLOACINA_LOG="info,sqlx=warn", NO_COLOR="1")
        self.process = subprocess.Popen(
            args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True
        )
        address = None
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            found = re.search(r"serving the HTTP API addr=(\S+)", line)
            if found:
                address = found.group(1)
                break
        if address is None:
            self.process.kill()
            raise RuntimeError("the server did not start:\n" + "".join(self.log))
        threading.Thread(
            target=lambda: [self.log.append(line) for line in self.process.stderr], daemon=True
        ).start()
        self.url = f"http://{address}"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = None
        if code != 0:
            raise AssertionError(
                f"the server did not stop cleanly (exit {code}):\n" + "".join(self.log[-80:])
            )

    def tail(self, lines: int = 80) -> str:
        return "".join(self.log[-lines:])


def cloacinactl(*args: str, cwd: Path) -> None:
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(REPO / "sample-packages" / "target"))
    done = subprocess.run(
        [str(CLOACINACTL), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cloacinactl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


def http(method: str, url: str, key: str | None = None, body=None, timeout: float = 30):
    """(status, headers, parsed JSON body or text) for one request."""
    data = None
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, error.headers, error.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, answer_headers, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, answer_headers, text


# ---- the browser ----------------------------------------------------------


def T(testid: str, **attributes: str) -> str:
    """A CSS selector for a data-testid, with data-* attributes."""
    selector = f'[data-testid="{testid}"]'
    for name, value in attributes.items():
        selector += f'[data-{name.replace("_", "-")}="{value}"]'
    return selector


class Browser:
    def __init__(self) -> None:
        options = webdriver.ChromeOptions()
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            f"--window-size={WIDE[0]},{WIDE[1]}",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
        ):
            options.add_argument(argument)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        if not chromium or not driver:
            raise RuntimeError("chromium and chromedriver must be on PATH (tests/browser/run installs them)")
        options.binary_location = chromium
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.driver.set_page_load_timeout(30)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": READY_PROBE})
        self.viewport(*WIDE)
        self.console: list[dict] = []

    def viewport(self, width: int, height: int) -> None:
        """The page's viewport exactly (the window's would lose the chrome)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def collect_console(self) -> None:
        # get_log drains the browser's buffer: keep every entry.
        try:
            self.console.extend(self.driver.get_log("browser"))
        except WebDriverException:
            pass

    def wait(self, condition, what: str, timeout: float = 15):
        try:
            return WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=0.1,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(lambda driver: condition(driver))
        except TimeoutException:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} "
                f"(at {self.driver.current_url}, page {self.page_state()})"
            ) from None

    def page_state(self) -> dict:
        try:
            return self.driver.execute_script(
                "const m = document.querySelector('main#page');"
                "return m ? {page: m.dataset.page, ready: m.dataset.ready, error: m.dataset.error || null,"
                " text: m.innerText.slice(0, 300)} : null;"
            )
        except WebDriverException:
            return {}

    def find(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_for(self, selector: str, what: str | None = None, timeout: float = 15, visible: bool = True):
        def present(driver):
            element = driver.find_element(By.CSS_SELECTOR, selector)
            return element if (element.is_displayed() or not visible) else False

        return self.wait(present, what or selector, timeout)

    def wait_page(self, page: str, hash_prefix: str | None = None, timeout: float = 15) -> None:
        """Until main#page is ready as `page` (and the hash starts so)."""

        def ready(driver):
            state = driver.execute_script(
                "const m = document.querySelector('main#page');"
                "return m && [m.dataset.ready, m.dataset.page, location.hash, m.dataset.error || ''];"
            )
            return (
                state
                and state[0] == "1"
                and state[1] == page
                and (hash_prefix is None or state[2].startswith(hash_prefix))
                and state
            )

        state = self.wait(ready, f"the {page} page to be ready", timeout)
        if state[3] == "1":
            raise AssertionError(f"the {page} page shows a load error: {self.page_state()}")

    def click(self, selector: str, what: str | None = None) -> None:
        self.wait(
            lambda driver: (lambda e: e.is_displayed() and e.is_enabled() and e)(
                driver.find_element(By.CSS_SELECTOR, selector)
            ),
            f"{what or selector} to be clickable",
        ).click()

    def nav(self, testid: str, page: str) -> None:
        self.click(T(testid))
        self.wait_page(page)

    def hash(self) -> str:
        return self.driver.execute_script("return location.hash")

    def screenshot(self, directory: Path | None, name: str, size=WIDE) -> None:
        if directory is None:
            return
        self.viewport(*size)
        try:
            # Let the page finish what it fills in after `ready` (cards, signers).
            try:
                self.wait(
                    lambda d: d.execute_script(
                        "return !document.querySelector('main [aria-busy=\"true\"]')"
                    ),
                    "the page to settle",
                    timeout=5,
                )
            except AssertionError:
                pass
            png = self.driver.get_screenshot_as_png()
        finally:
            self.viewport(*WIDE)
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == size, f"{name}.png is {width}x{height}, not {size[0]}x{size[1]}"
        (directory / f"{name}.png").write_bytes(png)
        log(f"    screenshot {directory / (name + '.png')} ({width}x{height})")

    def quit(self) -> None:
        try:
            self.driver.quit()
        except WebDriverException:
            pass


def absent_or_disabled(browser: Browser, testid: str) -> None:
    for element in browser.find_all(T(testid)):
        assert not (element.is_displayed() and element.is_enabled()), (
            f"a read key is offered `{testid}` (displayed and enabled) at {browser.driver.current_url}"
        )


# ---- the scenario ---------------------------------------------------------


class Scenario:
    def __init__(self, options) -> None:
        self.options = options
        self.shots = Path(options.screenshots).resolve() if options.screenshots else None
        self.work = Path(tempfile.mkdtemp(prefix="cloacina-browser-"))
        self.god = "clk_" + secrets.token_hex(24)
        self.server: Server | None = None
        self.browser: Browser | None = None
        self.urls: dict[str, str] = {}
        self.timings: list[tuple[str, float | None, float | None]] = []

    # -- setup --

    def prepare(self) -> None:
        log(f"==> packing and signing the samples ({WORKFLOW_PACKAGE}, {PANIC_PACKAGE}) in {self.work}")
        cloacinactl("key", "generate", "author", "--out", "keys", cwd=self.work)
        for sample in (WORKFLOW_PACKAGE, PANIC_PACKAGE):
            cloacinactl(
                "pack", str(REPO / "sample-packages" / sample),
                "--sign", "keys/author.key", "-o", f"{sample}.cloacina",
                cwd=self.work,
            )
        cloacinactl("trust", "add", "keys/author.pub", "--home", "host", cwd=self.work)
        self.server = Server(self.work / "host", self.god, "--require-signatures")
        log(f"    server at {self.server.url} ({CLOACINACTL})")
        status, _, _ = http("GET", f"{self.server.url}/health")
        assert status == 200, f"/health answered {status}"
        self.browser = Browser()

    def api(self, method: str, route: str, key: str | None = None, body=None):
        return http(method, f"{self.server.url}{route}", key or self.god, body)

    # -- 1. login --

    def login_page(self) -> None:
        log("==> /ui/ sends a visitor to the login page; a wrong key is refused; the god key signs in")
        b = self.browser
        b.driver.get(f"{self.server.url}/ui/")
        b.wait_page("login", "#/login")
        self.record_load("login")
        self.urls["login"] = b.driver.current_url
        b.screenshot(self.shots, "login")
        self.sign_in("clk_" + "0" * 48, expect="refused")
        self.sign_in(self.god)
        b.wait_page("overview", "#/overview")
        whoami = b.find(T("whoami")).text
        assert "god" in whoami.lower(), f"whoami should say god mode: {whoami!r}"
        self.urls["overview"] = b.driver.current_url

    def sign_in(self, key: str, expect: str = "ok") -> None:
        b = self.browser
        b.wait_page("login")
        field = b.wait_for(T("login-key"))
        field.clear()
        field.send_keys(key)
        b.click(T("login-submit"))
        if expect == "refused":
            error = b.wait_for(T("login-error"), "the login error for a wrong key")
            b.wait(lambda d: error.text.strip(), "the login error's text")
            assert b.driver.execute_script("return document.querySelector('main#page').dataset.page") == "login"
            log(f"    wrong key: {error.text.strip()!r}")

    # -- 2. upload --

    def upload(self, package: str) -> None:
        log(f"==> Packages: upload {package}.cloacina (signed), see it verified and loaded")
        b = self.browser
        b.nav("nav-packages", "packages")
        self.urls["packages"] = b.driver.current_url
        b.wait_for(T("upload-file"), visible=False).send_keys(str(self.work / f"{package}.cloacina"))
        b.click(T("upload-submit"))
        result = b.wait(
            lambda d: (lambda e: e.get_attribute("data-state") in ("ok", "refused") and e)(
                d.find_element(By.CSS_SELECTOR, T("upload-result"))
            ),
            "the upload's verification result",
            timeout=60,
        )
        text = result.text.strip()
        assert result.get_attribute("data-state") == "ok", f"the upload was refused: {text}"
        assert package in text and "verified" in text.lower(), (
            f"the upload result should say {package} was verified: {text!r}"
        )
        log(f"    upload-result: {' / '.join(line for line in text.splitlines() if line.strip())}")
        # The list looks again while a version is pending; the host loads it
        # in the background.
        row = T("package-row", package=package)

        def loaded(driver):
            for element in driver.find_elements(By.CSS_SELECTOR, row):
                status = element.get_attribute("data-status")
                if status == "failed":
                    raise AssertionError(f"{package} failed to load: {element.text}")
                if status == "loaded":
                    return element
            return False

        element = b.wait(loaded, f"{package} to be listed as loaded", timeout=60)
        assert "loaded" in element.text.lower(), f"the row should say loaded: {element.text!r}"
        # Signed by the key the host trusts: the row names it.
        signer = b.wait(
            lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, f'{row} {T("signer-name")}')), False),
            f"{package}'s signer named from the trust store",
        )
        assert signer.text.strip(), f"an empty signer name in {element.text!r}"
        log(f"    package-row: {' | '.join(element.text.split())}")

    # -- 3. run the workflow --

    def open_workflow(self, workflow: str) -> None:
        b = self.browser
        b.nav("nav-workflows", "workflows")
        self.urls.setdefault("workflows", b.driver.current_url)
        b.click(f'{T("workflow-row", workflow=workflow)} {T("workflow-link")}', f"the link to {workflow}")
        b.wait_page("workflow", f"#/workflows/{workflow}")

    def type_context(self, text: str) -> None:
        area = self.browser.wait_for(T("run-context"))
        area.clear()
        area.send_keys(text)

    def start_run(self, context: dict) -> str:
        b = self.browser
        self.type_context(json.dumps(context))
        b.wait(lambda d: d.find_element(By.CSS_SELECTOR, T("run-submit")).is_enabled(), "Run to be enabled")
        b.click(T("run-submit"))
        b.wait_page("execution", "#/executions/")
        execution = b.hash().split("/")[-1].split("?")[0]
        assert re.fullmatch(r"[0-9a-fA-F-]{36}", execution), f"no execution id in {b.hash()}"
        return execution

    def run_workflow(self) -> None:
        log(f"==> the {WORKFLOW} workflow: invalid JSON is refused, a valid context runs and is followed live")
        b = self.browser
        self.open_workflow(WORKFLOW)
        self.urls["workflow"] = b.driver.current_url
        b.wait(
            lambda d: {e.get_attribute("data-task") for e in d.find_elements(By.CSS_SELECTOR, T("dag-node"))}
            == WORKFLOW_TASKS,
            f"the workflow's DAG to show {sorted(WORKFLOW_TASKS)}",
        )

        self.type_context('{"base": 2, "work_ms": ')
        b.wait(
            lambda d: not d.find_element(By.CSS_SELECTOR, T("run-submit")).is_enabled(),
            "Run to be disabled for invalid JSON",
        )
        error = b.wait_for(T("run-context-error"), "the context's error message")
        b.wait(lambda d: error.text.strip(), "the context's error text")
        log(f"    invalid JSON: {error.text.strip()!r}")
        self.type_context("[1, 2]")
        b.wait(
            lambda d: not d.find_element(By.CSS_SELECTOR, T("run-submit")).is_enabled(),
            "Run to be disabled for a context that is not an object",
        )

        # Each task sleeps work_ms: the execution lasts seconds, so the page
        # shows it running first, then follows it to the end.
        execution = self.start_run({"base": 2, "work_ms": 600})
        self.urls["execution"] = b.driver.current_url
        b.driver.execute_script("window.__sameDocument = arguments[0];", execution)
        seen: list[str] = []

        def finished(driver):
            status = driver.find_element(By.CSS_SELECTOR, T("execution-status"))
            state = (status.get_attribute("data-state") or status.text).strip().lower()
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in ("failed", "cancelled"):
                raise AssertionError(f"the execution ended {state}: {b.page_state()}")
            nodes = driver.find_elements(By.CSS_SELECTOR, T("dag-node"))
            states = {n.get_attribute("data-task"): (n.get_attribute("data-state") or "").lower() for n in nodes}
            return (
                state == "completed"
                and status.text.strip().lower().find("completed") >= 0
                and set(states) == WORKFLOW_TASKS
                and all(s == "completed" for s in states.values())
                and states
            )

        b.wait(finished, f"execution {execution} and every dag-node to read completed, live", timeout=60)
        assert b.driver.execute_script("return window.__sameDocument") == execution, (
            "the execution page was reloaded: it must follow the execution in place"
        )
        assert seen[0] != "completed", (
            f"the execution page first showed {seen[0]!r}: the run should still have been going"
        )
        b.wait(
            lambda d: re.search(r'"sum"\s*:\s*20\b', d.find_element(By.CSS_SELECTOR, T("final-context")).text),
            'the final context to hold "sum": 20 (2 x (2 + 3 + 5))',
        )
        live = b.find_all(T("live-status"))
        log(f"    {execution}: {' -> '.join(seen)}"
            + (f" (live-status {live[0].get_attribute('data-state')})" if live else ""))
        self.execution = execution

    # -- 4. the panic --

    def run_panic(self) -> None:
        self.upload(PANIC_PACKAGE)
        log(f"==> the {PANIC_WORKFLOW} workflow fails; its execution, opened from the list, shows the panic")
        b = self.browser
        self.open_workflow(PANIC_WORKFLOW)
        execution = self.start_run({"reason": PANIC_REASON})
        b.wait(
            lambda d: (d.find_element(By.CSS_SELECTOR, T("execution-status")).get_attribute("data-state") or "").lower()
            == "failed",
            f"execution {execution} to read failed",
            timeout=60,
        )
        b.nav("nav-executions", "executions")
        self.urls["executions"] = b.driver.current_url
        row = T("execution-row", id=execution)
        b.wait(
            lambda d: d.find_element(By.CSS_SELECTOR, row).get_attribute("data-status") == "failed",
            f"the failed execution {execution} in the list",
        )
        b.click(f"{row} {T('execution-link')}", "the failed execution's link")
        b.wait_page("execution", f"#/executions/{execution}")
        self.urls["execution-failed"] = b.driver.current_url
        message = f"deliberate panic: {PANIC_REASON}"
        error = b.wait(
            lambda d: next(
                (e for e in d.find_elements(By.CSS_SELECTOR, T("task-error", task=PANIC_TASK)) if message in e.text),
                False,
            ),
            f"a task-error for {PANIC_TASK} containing {message!r}",
        )
        log(f"    task-error: {error.text.strip().splitlines()[0]!r}")
        self.failed_execution = execution

    # -- 5. timings --

    def executions(self) -> int:
        if self.options.executions is not None:
            return self.options.executions
        return TIMINGS_EXECUTIONS if self.options.timings else CI_EXECUTIONS

    def many_executions(self) -> None:
        count = self.executions()
        if count <= 0:
            return
        log(f"==> starting {count} executions of {WORKFLOW} over the API (16 at a time)")
        route = f"/v1/tenants/{TENANT}/workflows/{WORKFLOW}/execute"

        def start(i: int) -> int:
            for _ in range(20):
                status, headers, _ = self.api("POST", route, body={"context": {"base": i}})
                if status not in (429, 503):
                    return status
                time.sleep(min(float(headers.get("Retry-After") or 1), 5))
            return status

        began = time.time()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(start, range(count)))
        refused = [s for s in statuses if s != 202]
        assert not refused, f"{len(refused)} of {count} executions were refused: {sorted(set(refused))}"
        started = time.time() - began
        # Measure a settled host: wait (bounded) for them to end.
        bound = max(60.0, count * 0.15)
        running = None
        while time.time() - began < bound:
            status, _, body = self.api("GET", f"/v1/tenants/{TENANT}/executions?status=running&limit=1")
            assert status == 200, f"listing running executions answered {status}: {body}"
            running = body["total"]
            if running == 0:
                break
            time.sleep(0.5)
        log(
            f"    {count} started in {started:.1f} s ({count / max(started, 1e-3):.0f}/s); "
            + ("all ended" if running == 0 else f"{running} still running after {bound:.0f} s")
            + f" {time.time() - began:.1f} s after the first"
        )
        self.bulk = count

    def record_load(self, name: str) -> float:
        """The time from the document's navigation start to its first `ready`."""
        entries = self.browser.driver.execute_script("return window.__ready || []")
        assert entries, f"no ready transition recorded for {name}"
        return self.add_timing(name, load=entries[0]["t"])

    def add_timing(self, name: str, load=None, inapp=None) -> float:
        for i, (known, old_load, old_inapp) in enumerate(self.timings):
            if known == name:
                self.timings[i] = (name, load if load is not None else old_load, inapp if inapp is not None else old_inapp)
                break
        else:
            self.timings.append((name, load, inapp))
        return load if load is not None else inapp

    def time_load(self, name: str, page: str) -> None:
        """Loads the page's address in a fresh document and times it."""
        b = self.browser
        url = self.urls[name]
        b.driver.get("about:blank")
        b.driver.get(url)
        b.wait_page(page, "#" + url.split("#", 1)[1].split("?")[0], timeout=30)
        self.record_load(name)

    def time_nav(self, name: str, testid: str, page: str) -> None:
        """Clicks a nav link and times the page's arrival in this document."""
        b = self.browser
        link = b.wait_for(T(testid))
        started = b.driver.execute_script("const t = performance.now(); arguments[0].click(); return t;", link)
        b.wait_page(page, timeout=30)
        entries = b.driver.execute_script("return window.__ready || []")
        after = [e for e in entries if e["t"] >= started and e["page"] == page]
        assert after, f"no ready transition for {page} after the click"
        self.add_timing(name, inapp=after[0]["t"] - started)

    def page_timings(self) -> None:
        log("==> page timings: navigation start -> main#page[data-ready=1] (performance.now())")
        b = self.browser
        self.urls.setdefault("graphs", self.urls["overview"].split("#")[0] + "#/graphs")
        self.urls.setdefault("hosts", self.urls["overview"].split("#")[0] + "#/hosts")
        self.urls.setdefault("admin", self.urls["overview"].split("#")[0] + "#/admin")
        pages = [
            ("overview", "overview", "nav-overview"),
            ("packages", "packages", "nav-packages"),
            ("workflows", "workflows", "nav-workflows"),
            ("workflow", "workflow", None),
            ("executions", "executions", "nav-executions"),
            ("execution", "execution", None),
            ("execution-failed", "execution", None),
            ("graphs", "graphs", "nav-graphs"),
            ("hosts", "hosts", "nav-hosts"),
            ("admin", "admin", "nav-admin"),
        ]
        for name, page, _ in pages:
            self.time_load(name, page)
            if name == "executions":
                rows = len(b.find_all(T("execution-row")))
                info = b.find_all(T("page-info"))
                log(f"    executions list: {rows} rows shown, {info[0].text.strip() if info else '?'}")
            b.screenshot(self.shots, name)
            if name == "overview":
                b.screenshot(self.shots, "overview-narrow", NARROW)
        # In-app: from a page no nav link points at, each link in turn.
        b.driver.get(self.urls["workflow"])
        b.wait_page("workflow")
        for name, page, testid in pages:
            if testid:
                self.time_nav(name, testid, page)
        width = max(len(name) for name, _, _ in self.timings)
        log(f"    {'page':<{width}}  {'full load':>10}  {'in-app':>8}   ({getattr(self, 'bulk', 0)} executions started first)")
        for name, load, inapp in self.timings:
            cell = lambda v: f"{v:8.0f} ms" if v is not None else f"{'-':>11}"
            log(f"    {name:<{width}}  {cell(load)}  {cell(inapp)}")
        slow = [(n, v) for n, load, inapp in self.timings for v in (load, inapp) if v is not None and v > READY_BOUND_MS]
        assert not slow, f"pages not ready within {READY_BOUND_MS} ms: {slow}"

    # -- 6. a read key --

    def read_key(self) -> None:
        log("==> a read key: no write action offered in the console, crafted writes refused (403)")
        b = self.browser
        status, _, created = self.api("POST", "/v1/auth/keys", body={"name": "console-reader", "role": "read"})
        assert status == 201, f"creating a read key answered {status}: {created}"
        reader = created["key"]
        assert created["permissions"] == "read", created

        # A long execution, so that its page would offer cancel.
        status, _, started = self.api(
            "POST", f"/v1/tenants/{TENANT}/workflows/{WORKFLOW}/execute", body={"context": {"work_ms": 2500}}
        )
        assert status == 202, f"starting a long execution answered {status}: {started}"
        running = started["execution_id"]
        running_url = self.urls["overview"].split("#")[0] + f"#/executions/{running}"
        b.driver.get(running_url)
        b.wait_page("execution", f"#/executions/{running}")
        b.wait(
            lambda d: d.find_element(By.CSS_SELECTOR, T("cancel-button")).is_displayed()
            and d.find_element(By.CSS_SELECTOR, T("cancel-button")).is_enabled(),
            "the god key to be offered cancel on a running execution",
        )
        # Leave once its live channel is settled (closing a socket still
        # connecting is an error in the browser's log).
        b.wait(
            lambda d: d.find_element(By.CSS_SELECTOR, T("live-status")).get_attribute("data-state")
            in ("live", "polling", "ended"),
            "the execution page's live updates to connect",
        )

        b.click(T("logout"))
        b.wait_page("login", "#/login")
        assert not b.find(T("nav-packages")).is_displayed(), "the navigation should be hidden once signed out"
        self.sign_in(reader)
        b.wait_page("overview")
        assert not b.find(T("nav-admin")).is_displayed(), "a read key should not see the admin page's link"

        b.nav("nav-packages", "packages")
        absent_or_disabled(b, "upload-submit")
        absent_or_disabled(b, "upload-file")
        absent_or_disabled(b, "delete-button")
        self.open_workflow(WORKFLOW)
        absent_or_disabled(b, "run-submit")
        b.driver.get(running_url)
        b.wait_page("execution", f"#/executions/{running}")
        state = (b.find(T("execution-status")).get_attribute("data-state") or "").lower()
        assert state == "running", f"the long execution should still be running for this check, not {state!r}"
        absent_or_disabled(b, "cancel-button")

        refusals = {
            "execute": self.api("POST", f"/v1/tenants/{TENANT}/workflows/{WORKFLOW}/execute", key=reader, body={"context": {}}),
            "cancel": self.api("POST", f"/v1/tenants/{TENANT}/executions/{running}/cancel", key=reader),
            "create a key": self.api("POST", "/v1/auth/keys", key=reader, body={"name": "sneaky", "role": "admin"}),
        }
        for what, (status, _, body) in refusals.items():
            assert status == 403, f"a read key's {what} answered {status}, not 403: {body}"
        log("    read key: no upload, run or cancel offered; execute, cancel and key creation refused with 403")

        # The god key cancels it: the reader's open page follows, unreloaded.
        b.driver.execute_script("window.__sameDocument = 'cancel';")
        status, _, body = self.api("POST", f"/v1/tenants/{TENANT}/executions/{running}/cancel")
        assert status == 200, f"cancelling answered {status}: {body}"
        b.wait(
            lambda d: (d.find_element(By.CSS_SELECTOR, T("execution-status")).get_attribute("data-state") or "").lower()
            == "cancelled",
            "the open execution page to show cancelled, live",
            timeout=30,
        )
        assert b.driver.execute_script("return window.__sameDocument") == "cancel", "the page was reloaded"

    # -- 7. headers, and the console turned off --

    def headers(self) -> None:
        log("==> /ui/ answers carry the CSP; --no-console leaves /ui/ out")
        for route in ("/ui/", "/ui/packages", "/ui/assets/js/main.js"):
            status, headers, _ = http("GET", f"{self.server.url}{route}")
            assert status == 200, f"GET {route} answered {status}"
            csp = headers.get("Content-Security-Policy") or ""
            assert "script-src 'self'" in csp, f"GET {route}: the CSP lacks script-src 'self': {csp!r}"
        log(f"    Content-Security-Policy: {csp}")
        (self.work / "no-console").mkdir(exist_ok=True)
        off = Server(self.work / "no-console", "clk_" + secrets.token_hex(24), "--no-console")
        try:
            assert http("GET", f"{off.url}/health")[0] == 200, "the API should still answer with --no-console"
            for route in ("/ui/", "/ui/assets/js/main.js"):
                status = http("GET", f"{off.url}{route}")[0]
                assert status == 404, f"--no-console: GET {route} answered {status}, not 404"
        finally:
            off.stop()
        log("    --no-console: /ui/ is 404, /health is 200")

    # -- 8. the browser's console --

    def console_clean(self) -> None:
        log("==> the browser's console log")
        self.browser.collect_console()
        expected = re.compile(r"status of (401|403)\b")
        errors = [
            e for e in self.browser.console
            if e.get("level") == "SEVERE" and not (e.get("source") == "network" and expected.search(e.get("message", "")))
        ]
        severe = [e for e in self.browser.console if e.get("level") == "SEVERE"]
        log(f"    {len(self.browser.console)} entries, {len(severe)} severe, {len(severe) - len(errors)} of them expected 401/403")
        assert not errors, "errors in the browser's console:\n" + "\n".join(
            f"  [{e.get('source')}] {e.get('message')}" for e in errors
        )

    # -- all --

    # -- keyboard --

    def keyboard(self) -> None:
        log("==> by keyboard alone: Tab reaches the navigation, Enter opens a page, focus lands on its heading")
        b = self.browser
        driver = b.driver
        b.nav("nav-overview", "overview")
        driver.execute_script("document.activeElement && document.activeElement.blur()")
        focused = None
        for _ in range(40):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            focused = driver.execute_script(
                "const e = document.activeElement; return e && e.getAttribute('data-testid');"
            )
            if focused == "nav-executions":
                break
        assert focused == "nav-executions", f"Tab never reached the Executions link (last: {focused!r})"
        outline = driver.execute_script(
            "return getComputedStyle(document.activeElement).outlineStyle;"
        )
        assert outline not in ("", "none"), f"the focused link shows no outline ({outline!r})"
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        b.wait_page("executions", "#/executions")
        heading = driver.execute_script(
            "const e = document.activeElement; return e && e.getAttribute('data-testid');"
        )
        assert heading == "page-title", f"focus should move to the page's heading, not {heading!r}"
        log("    Tab, Enter: the executions page, its heading focused")

    def run(self) -> None:
        began = time.time()
        self.prepare()
        steps = [
            self.login_page,
            lambda: self.upload(WORKFLOW_PACKAGE),
            self.run_workflow,
            self.run_panic,
            self.keyboard,
            self.many_executions,
            self.page_timings,
            self.read_key,
            self.headers,
            self.console_clean,
        ]
        for step in steps:
            step()
            self.browser.collect_console()
        self.browser.quit()
        self.browser = None
        self.server.stop()
        log(f"\nthe console passed in a browser ({time.time() - began:.0f} s)")

    def failed(self) -> None:
        """Leaves what shows why: the page, its screenshot, the logs."""
        out = TARGET / "browser-failure"
        out.mkdir(parents=True, exist_ok=True)
        if self.browser is not None:
            try:
                self.browser.driver.save_screenshot(str(out / "page.png"))
                (out / "page.html").write_text(self.browser.driver.page_source)
                self.browser.collect_console()
                (out / "console.json").write_text(json.dumps(self.browser.console, indent=1))
                log(f"page at failure: {self.browser.driver.current_url} -> {out}/page.png, page.html, console.json")
                for entry in self.browser.console[-20:]:
                    log(f"  browser [{entry.get('level')}] {entry.get('message')}")
            except WebDriverException as error:
                log(f"(no browser state: {error.msg})")
        if self.server is not None:
            (out / "server.log").write_text("".join(self.server.log))
            log(f"server log (last lines; all in {out}/server.log):\n{self.server.tail()}")

    def cleanup(self) -> None:
        if self.browser is not None:
            self.browser.quit()
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.kill()
            self.server.process.wait()
        shutil.rmtree(self.work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshots", metavar="DIR", help="also write one PNG per page into DIR")
    parser.add_argument("--timings", action="store_true",
                        help=f"start {TIMINGS_EXECUTIONS} executions before timing the pages (CI: {CI_EXECUTIONS})")
    parser.add_argument("--executions", type=int, metavar="N", help="start N executions before timing the pages")
    options = parser.parse_args()
    if options.screenshots:
        Path(options.screenshots).mkdir(parents=True, exist_ok=True)
    if not CLOACINACTL.is_file():
        log(f"error: {CLOACINACTL} is missing: build it (cargo build -p cloacinactl -p cloacina-loader) or set CLOACINACTL")
        return 1
    scenario = Scenario(options)
    try:
        scenario.run()
        return 0
    except Exception:  # noqa: BLE001 - report every failure the same way
        traceback.print_exc()
        scenario.failed()
        log("\nFAILED: the console in a browser")
        return 1
    finally:
        scenario.cleanup()


if __name__ == "__main__":
    sys.exit(main())
