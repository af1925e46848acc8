"""scripts/setup installs the server into the detector venv: `hsi-detector` on that venv's PATH and
`python -m hsi_detector` from any folder, as in the add-on image.

The step runs for real (`HSI_ONLY_DETECTOR_PACKAGE=DIR scripts/setup`, the very function setup
calls for .venv-detector) into a throwaway venv, never into the shared one. The throwaway venv
borrows this venv's packages (pip, setuptools, aiohttp, ...) through a .pth file, so nothing is
downloaded; the server must then work from a folder that is not detector/.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

from tests.support import DETECTOR_DIR

SETUP = DETECTOR_DIR.parent / "scripts" / "setup"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("HSI_")}
    return env | extra


def test_setup_installs_the_server_usable_from_any_folder(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = (venv / "lib").glob("python3*/site-packages")
    borrowed = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    done = subprocess.run(
        ["bash", str(SETUP)],
        env=_clean_env(HSI_ONLY_DETECTOR_PACKAGE=str(venv)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for argv in ([str(venv / "bin" / "hsi-detector"), "--help"],
                 [str(venv / "bin" / "python"), "-m", "hsi_detector", "--help"]):  # fmt: skip
        shown = subprocess.run(
            argv, cwd=elsewhere, env=_clean_env(), capture_output=True, text=True, timeout=120
        )
        assert shown.returncode == 0, shown.stderr
        assert "--max-connections-per-client" in shown.stdout
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import hsi_detector; print(hsi_detector.__file__)"],
        cwd=elsewhere,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Editable: the working tree's code, so an edit needs no reinstall.
    assert Path(where.stdout.strip()).resolve().is_relative_to(DETECTOR_DIR)
