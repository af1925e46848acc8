"""The real detector server (python -m hsi_detector, TFLite) as a child process, and sample frames.

Started with the detector's own environment (.venv-detector, made by scripts/setup); the model is
the SSD MobileNet COCO model that fhempy ships, also installed into .venv for the local detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import io
import os
from pathlib import Path
import re
import subprocess
import time

from PIL import Image
import pytest
import pytest_socket

from custom_components.home_security_intel.detection.urls import normalize_fingerprint

ROOT = Path(__file__).resolve().parents[2]
DETECTOR_PYTHON = ROOT / ".venv-detector" / "bin" / "python"
IMAGES = ROOT / "tests" / "support" / "onvif_sim" / "images"
BUS = (IMAGES / "bus.jpg").read_bytes()
API_KEY = "Zq7Wm2Xc9Vb4Nt6Rk8Hs3Jd5Lf1Gp0Ya"  # 32 characters, passes the server's strength rules
STARTUP_TIMEOUT = 90.0


def fhempy_model(venv: Path) -> Path | None:
    """detect.tflite of the fhempy package in a virtual environment, if installed there."""
    found = sorted(
        venv.glob("lib/python3*/site-packages/fhempy/lib/object_detection/detect.tflite")
    )
    return found[0] if found else None


SERVER_MODEL = fhempy_model(ROOT / ".venv-detector")
LOCAL_MODEL = fhempy_model(ROOT / ".venv")

needs_detector_venv = pytest.mark.skipif(
    not DETECTOR_PYTHON.exists() or SERVER_MODEL is None,
    reason=".venv-detector with fhempy is missing (run scripts/setup without HSI_SKIP_DETECTOR)",
)


def free_port() -> int:
    """A port nobody listens on right now.

    Module-scoped servers start before the per-test fixture that lifts Home Assistant's socket
    guard, so the probe uses the real socket class (binding 127.0.0.1 only, never connecting).
    """
    with pytest_socket._true_socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jpeg(width: int, height: int, color: tuple[int, int, int] = (90, 90, 90)) -> bytes:
    """A plain JPEG of the given size."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="JPEG")
    return buffer.getvalue()


@dataclass
class DetectorServer:
    """`python -m hsi_detector --engine tflite` on 127.0.0.1, its output in a file."""

    workdir: Path
    args: list[str] = field(default_factory=list)
    key: str | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def tls(self) -> bool:
        return "--tls" in self.args

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"detector_{self.port}.log"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def fingerprint(self) -> str:
        """The certificate fingerprint the server printed, normalised."""
        match = re.search(r"SHA-256 fingerprint: ([0-9A-F:]+)", self.output())
        assert match, self.output()
        return normalize_fingerprint(match.group(1))

    def start(self) -> DetectorServer:
        assert SERVER_MODEL is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("HSI_")}
        env["PYTHONPATH"] = str(ROOT / "detector")
        if self.key:
            env["HSI_API_KEY"] = self.key
        argv = [
            str(DETECTOR_PYTHON),
            "-m",
            "hsi_detector",
            "--port",
            str(self.port),
            "--engine",
            "tflite",
            "--model",
            str(SERVER_MODEL),
            "--cpu-threads",
            "1",
            "--auth-fail-limit",
            "0",
            "--no-warmup",
            *self.args,
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"detector exited with {self.proc.returncode}:\n{self.output()}")
            if "listening on" in self.output():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"detector did not start:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
