"""Browser tests of the dashboard: Debian's Chromium (installed by scripts/setup-test-env),
driven by Playwright for Python with the system browser as its executable (Playwright's own
browser download is never used). One SQLite server for the module: the dashboard reads
through the same services on both stores, and those are tested on both elsewhere.

Screenshots are taken during the run into the test's temporary directory; they replace the
ones in docs/img/ when those are missing or when BATCHYARD_SCREENSHOTS=update is set, so
that a normal run leaves the working tree alone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import FAST, ServerProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("ui-server"), None, **FAST)
    proc.start()
    yield proc
    proc.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/setup-test-env installs Debian's chromium")
        pytest.skip("chromium is not installed (scripts/setup-test-env installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, ui_server):
    context = browser.new_context(
        base_url=ui_server.endpoint, viewport={"width": 1360, "height": 900}
    )
    context.set_default_timeout(20_000)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot(tmp_path):
    """``screenshot(page, "overview")``: into the run's tmp dir, and docs/img/ (see above)."""

    def take(p, name: str) -> Path:
        path = tmp_path / f"dashboard-{name}.png"
        p.screenshot(path=str(path), full_page=True)
        target = DOCS / path.name
        if os.environ.get("BATCHYARD_SCREENSHOTS") == "update" or not target.exists():
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return path

    return take
