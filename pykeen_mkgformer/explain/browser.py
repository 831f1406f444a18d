"""Open a page in headless Chromium (Playwright driving the system's Chromium): for the browser test and screenshots.

Needs the Python package ``playwright`` (in the ``tests`` extra) and a Chromium binary (Debian:
``apt-get install chromium``); Playwright's own browser download is never used. Chromium starts
with a fresh profile and with every background service off, so it makes no connection of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_FLAGS", "find_chromium", "PageSession", "open_page", "screenshot"]

#: no sandbox (root, containers), no GPU, no first-run / sync / update / background connections
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


def find_chromium() -> str | None:
    """``$CHROMIUM``, else ``chromium`` / ``chromium-browser`` on the PATH, else None."""
    candidates = [os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@dataclass
class PageSession:
    """An open page and what it did: console messages, uncaught errors and every request."""

    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def open_page(path: str | Path, *, width: int = 1180, height: int = 900, executable: str | None = None) -> Iterator[PageSession]:
    """Load a local HTML file in headless Chromium and yield the page with its event records.

    :raises RuntimeError: when no Chromium or no Playwright is installed
    """
    executable = executable or find_chromium()
    if executable is None:
        raise RuntimeError("No Chromium found (install the Debian package 'chromium', or set $CHROMIUM).")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise RuntimeError("The Python package 'playwright' is needed (pip install playwright; no browser download).") from error
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height},
        )
        try:
            page = context.new_page()
            session = PageSession(page)
            page.on("console", lambda message: session.console.append((message.type, message.text)))
            page.on("pageerror", lambda error: session.errors.append(str(error)))
            page.on("request", lambda request: session.requests.append(request.url))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            yield session
        finally:
            context.close()


def screenshot(path: str | Path, output: str | Path, *, width: int = 1180, full_page: bool = True, clip_height: int | None = None) -> Path:
    """A PNG screenshot of a local HTML file (the whole page, or its top ``clip_height`` pixels)."""
    output = Path(output)
    with open_page(path, width=width) as session:
        options: dict[str, Any] = dict(path=str(output), full_page=full_page)
        if clip_height is not None:
            options = dict(path=str(output), clip=dict(x=0, y=0, width=width, height=clip_height), full_page=True)
        session.page.screenshot(**options)
    return output
