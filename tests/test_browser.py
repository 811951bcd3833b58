"""The interactive path, in a real browser: JupyterLab + headless Chromium (Playwright).

Papermill tests run the notebooks top to bottom with the injected parameter; they never
render a widget. This test does what a student does: open 02_sft_train in JupyterLab, run
the cells up to the preset picker, choose another preset in the dropdown, run the next
cell, and check the settings it resolved come from the widget, not from the parameter.

The server runs from this environment on a free loopback port with a random token, in a
temporary root folder holding a COPY of the notebook (the repository's notebook is never
opened, so it is never saved). The browser is Debian's /usr/bin/chromium, installed by
`make browser` (a prerequisite of `make test`); Playwright's own browsers are never
downloaded. A screenshot after the choice goes to output/browser/02_sft_train_preset.png.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02_sft_train.ipynb"
SCREENSHOT = ROOT / "output" / "browser" / "02_sft_train_preset.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
CHOSEN = "default"  # the preset picked in the dropdown; the notebook's parameter is fast_test
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _need_chromium():
    if Path(CHROMIUM).exists():
        return
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and apt-get is not available to install Debian's chromium; "
                    "install Chromium at that path to run the browser test")
    pytest.fail(f"{CHROMIUM} is missing: run `make browser` (a prerequisite of `make test`), "
                "which installs Debian's chromium with apt-get")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


class LabServer:
    """A JupyterLab server from this environment, in its own temporary root folder."""

    def __init__(self, tmp: Path):
        self.root = tmp / "root"
        self.root.mkdir()
        shutil.copy2(NOTEBOOK, self.root / NOTEBOOK.name)
        self.token = secrets.token_hex(24)
        self.log_path = tmp / "jupyter.log"
        # An empty config folder (no user settings leak in) that turns off the news feed and update check.
        config_dir = tmp / "jupyter_config"
        config_dir.mkdir()
        (config_dir / "jupyter_server_config.py").write_text(
            "c.LabApp.news_url = None\n"
            "c.LabApp.check_for_updates_class = 'jupyterlab.NeverCheckForUpdate'\n")
        # Fresh user settings: never ask about the news feed (its toast would cover the screenshot).
        notification = tmp / "user_settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        self.env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config_dir), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
                        JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1", PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._log = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str):
        return _get_json(f"{self.base}/api/{path}?token={self.token}")

    def start(self, timeout: float = 90.0) -> None:
        for _attempt in range(3):  # the free port can be taken between choosing it and binding it
            self.port = _free_port()
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                 f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                 f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                 f"--LabApp.workspaces_dir={self.tmp / 'workspaces'}",
                 f"--LabApp.user_settings_dir={self.tmp / 'user_settings'}"]
                + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI runs as root
                cwd=self.root, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if "version" in _get_json(f"{self.base}/api", timeout=2):
                        return
                except (urllib.error.URLError, OSError, ValueError):
                    pass
                time.sleep(0.5)
            if self.proc.poll() is None or "already in use" not in self.log():
                break  # running but not answering, or failed for another reason: give up below
        raise RuntimeError(f"JupyterLab did not answer on {self.base}/api:\n{self.log()}")

    def wait_kernel_idle(self, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sessions = self.api("sessions")
            kernels = [s["kernel"] for s in sessions if s.get("kernel")]
            if kernels and all(k.get("execution_state") == "idle" for k in kernels):
                return kernels[0]
            time.sleep(0.5)
        raise AssertionError(f"the notebook's kernel did not become idle in {timeout:.0f}s: {self.api('sessions')}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Shut the kernels down through the API, then the server; kill whatever is left."""
        if self.proc is None:
            return
        kernel_pids = []
        try:
            import psutil

            kernel_pids = [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except Exception:
            pass
        try:
            for kernel in self.api("kernels"):
                request = urllib.request.Request(f"{self.base}/api/kernels/{kernel['id']}?token={self.token}",
                                                 method="DELETE")
                urllib.request.urlopen(request, timeout=10).close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for pid in kernel_pids:  # a kernel runs in its own session, so killpg does not reach it
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log:
            self._log.close()


@pytest.fixture
def lab(tmp_path):
    _need_chromium()
    server = LabServer(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _code_cell(page, index: int):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell").nth(index)


def _run_cell(page, index: int, timeout_ms: int = 120_000) -> None:
    """Select code cell ``index`` (command mode, by its prompt), press Shift+Enter, wait for its count."""
    from playwright.sync_api import expect

    cell = _code_cell(page, index)
    cell.scroll_into_view_if_needed()
    prompt = cell.locator(".jp-InputArea .jp-InputPrompt")
    prompt.click()
    expect(cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    page.keyboard.press("Shift+Enter")
    expect(prompt).to_have_text(re.compile(r"^\s*\[\d+\]:\s*$"), timeout=timeout_ms)


def _outputs_text(page) -> list[str]:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").all_inner_texts()


@pytest.mark.timeout(300)
def test_preset_picker_drives_the_resolved_settings_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # assertions wait for the page; cells get their own, longer waits
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.set_default_timeout(60_000)
            page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}", wait_until="domcontentloaded")
            expect(_code_cell(page, 0)).to_be_visible(timeout=90_000)
            lab.wait_kernel_idle()
            expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator")
                   ).to_have_attribute("data-status", "idle", timeout=60_000)

            # Parameters, then imports + the picker.
            _run_cell(page, 0)
            _run_cell(page, 1, timeout_ms=150_000)  # imports torch, transformers and trl on 2 cores

            picker_out = _code_cell(page, 1).locator(".jp-OutputArea-output")
            widget = picker_out.locator(".jupyter-widgets.widget-dropdown")
            expect(widget).to_be_visible()
            select = widget.locator("select")
            expect(select).to_have_count(1)
            assert "fast_test" == select.evaluate("s => s.options[s.selectedIndex].textContent"), \
                "the picker should start at the notebook parameter PRESET='fast_test'"
            assert not any("Error displaying widget" in t for t in _outputs_text(page)), _outputs_text(page)

            select.select_option(label=CHOSEN)
            assert select.evaluate("s => s.options[s.selectedIndex].textContent") == CHOSEN
            lab.wait_kernel_idle(30)  # the widget's new value has reached the kernel

            # The resolve cell reads picker.value.
            _run_cell(page, 2)
            resolved = _code_cell(page, 2).locator(".jp-OutputArea-output")
            expect(resolved.first).to_contain_text(f"Resolved preset: {CHOSEN} on cpu")
            first_row = resolved.locator("table.dataframe tbody tr").first
            expect(first_row.locator("td")).to_have_text(["preset", CHOSEN])

            # Screenshot with the dropdown at the top and the resolved settings below it.
            lab.wait_kernel_idle(30)
            _code_cell(page, 1).evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)  # let the notebook's scroll and lazy rendering settle
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            texts = _outputs_text(page)
            for marker in ("Traceback", "Error"):
                assert not any(marker in t for t in texts), f"a cell output contains {marker!r}:\n" + "\n---\n".join(texts)
        except Exception:
            print(f"JupyterLab log (tail):\n{lab.log()}")
            raise
        finally:
            browser.close()
    print(f"browser test took {time.monotonic() - started:.1f}s after the server answered")
