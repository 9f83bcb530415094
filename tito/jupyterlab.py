"""Starting JupyterLab for tito: the command line, and a settings folder of tito's own that shows no news."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


# JupyterLab's plugin that asks "Would you like to get notified about official Jupyter news?" and then fetches
# news from the internet; the hub turns it off the same way (hub/student/labconfig/page_config.json).
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"


def without_news(root: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` for a JupyterLab on `root` that shows no news toast: a page config of tito's own, in root/.tito/,
    goes first on JUPYTER_CONFIG_PATH, so the user's own Jupyter settings (~/.jupyter) are neither changed nor
    needed."""
    settings = root / ".tito" / "jupyter"
    (settings / "labconfig").mkdir(parents=True, exist_ok=True)
    (settings / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {NEWS_PLUGIN: True}}, indent=1) + "\n", encoding="utf-8")
    return dict(env, JUPYTER_CONFIG_PATH=os.pathsep.join(filter(None, [str(settings), env.get("JUPYTER_CONFIG_PATH")])))


def jupyterlab_command(root: Path, ip: str, port: int | None, browser: bool) -> list[str]:
    """JupyterLab serving `root` on `ip`, from this Python's environment."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", f"--ServerApp.ip={ip}"]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines run as root; JupyterLab refuses it otherwise
    return command
