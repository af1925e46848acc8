"""``scripts/develop`` keeps the demo camera's password in the develop folder across restarts.

Runs the script's own password block (from its marker comment to the setup call) in bash, twice,
in a temporary develop folder: starting Home Assistant for real is test_develop's job.
"""

from __future__ import annotations

import os
from pathlib import Path
import stat
import subprocess

ROOT = Path(__file__).parents[1]
MARKER = "# The camera's password survives restarts"


def _password_block() -> str:
    script = (ROOT / "scripts" / "develop").read_text(encoding="utf-8")
    start = script.index(MARKER)
    end = script.index("\nscripts/setup", start)
    return script[start:end]


def _run(develop_dir: Path, **env: str) -> str:
    block = _password_block() + '\nprintf %s "$CAM_PASSWORD"\n'
    environment = {"PATH": os.environ["PATH"], "DEVELOP_DIR": str(develop_dir), **env}
    done = subprocess.run(
        ["bash", "-euc", block], env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_generated_password_is_kept_for_the_next_start(tmp_path: Path) -> None:
    develop_dir = tmp_path / "develop"
    first = _run(develop_dir)
    assert first.startswith("hsi-demo-")
    assert _run(develop_dir) == first
    saved = develop_dir / "camera-password"
    assert saved.read_text(encoding="utf-8").strip() == first
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_the_environment_still_wins(tmp_path: Path) -> None:
    develop_dir = tmp_path / "develop"
    generated = _run(develop_dir)
    assert _run(develop_dir, HSI_CAMERA_PASSWORD="chosen-one") == "chosen-one"
    assert _run(develop_dir) == generated
