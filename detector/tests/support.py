"""Test support: the detector as a real process on 127.0.0.1, sample images, crafted bad images."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import importlib.util
import io
import os
from pathlib import Path
import secrets
import socket
import struct
import subprocess
import sys
import time
import zlib

from PIL import Image

DETECTOR_DIR = Path(__file__).resolve().parents[1]
# Located without importing ultralytics (which patches PIL.Image.open on import).
_SPEC = importlib.util.find_spec("ultralytics")
assert _SPEC is not None
ASSETS = Path(str(_SPEC.origin)).parent / "assets"
BUS = (ASSETS / "bus.jpg").read_bytes()
ZIDANE = (ASSETS / "zidane.jpg").read_bytes()
API_KEY = "k7Qp2vXz9LmR4tWb8NcY3hJd6FsG1aEu"  # 32 characters, passes the strength rules
STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_key() -> str:
    """A fresh strong key."""
    return secrets.token_hex(24)


@dataclass
class ServerProcess:
    """`python -m hsi_detector` in a child process; output collected in a file."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _log: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if "--tls" in self.args and "disabled" not in self.args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self._log.read_text(errors="replace") if self._log else ""

    def launch(self) -> subprocess.Popen[bytes]:
        base = self.workdir or Path(os.environ.get("TMPDIR", "/tmp"))
        self._log = base / f"hsi_detector_{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HSI_")} | self.env
        # The worktree's package first; a test may add folders after it (e.g. a shadowing module).
        extra = [self.env["PYTHONPATH"]] if self.env.get("PYTHONPATH") else []
        env["PYTHONPATH"] = os.pathsep.join([str(DETECTOR_DIR), *extra])
        env.setdefault("YOLO_OFFLINE", "1")
        argv = [
            os.path.normpath(sys.executable),
            "-m",
            "hsi_detector",
            "--port",
            str(self.port),
            *self.args,
        ]
        with self._log.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=DETECTOR_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return self.proc

    def start(self) -> ServerProcess:
        """Launch and wait until it serves (it logs 'listening on' once the socket is bound)."""
        proc = self.launch()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{self.output()}")
            if "listening on" in self.output():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def run_to_exit(self, timeout: float = 60.0) -> tuple[int, str]:
        """For servers expected to refuse to start: the exit status and the output."""
        proc = self.launch()
        try:
            code = proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
        return code, self.output()

    def stop(self) -> int | None:
        """SIGTERM (a clean stop lets coverage save its data), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    """An image file's bytes."""
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def resized(data: bytes, width: int) -> bytes:
    """A JPEG of the sample scaled to `width` pixels wide (distinguishable by its size)."""
    with Image.open(io.BytesIO(data)) as image:
        height = round(image.height * width / image.width)
        return encode(image.convert("RGB").resize((width, height)))


def png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims width x height (CRC fixed, so only the size lies)."""
    data = bytearray(encode(Image.new("RGB", (8, 8), "red"), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    body = bytes(data[ihdr : ihdr + 17])
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 header claims width x height."""
    data = bytearray(encode(Image.new("RGB", (8, 8), "blue")))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def metric(text: str, name: str) -> float:
    """The value of one sample line of a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def open_from(
    server: ServerProcess, local: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TCP connection to the server from a chosen loopback address (127.0.0.x)."""
    return await asyncio.open_connection("127.0.0.1", server.port, local_addr=(local, 0))


READ_TIMEOUT = 20.0  # generous: reaching it is a failure, never a wait the test relies on


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes the connection."""
    async with asyncio.timeout(READ_TIMEOUT):
        return await reader.read()


async def exchange(server: ServerProcess, local: str, data: bytes) -> bytes:
    """Send raw bytes (a request, whole or not); all the server answers until it closes."""
    reader, writer = await open_from(server, local)
    try:
        writer.write(data)
        await writer.drain()
        return await read_all(reader)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    """The status code of the first answer in raw bytes (0 when there is none)."""
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def head_and_body(answer: bytes) -> tuple[str, bytes]:
    """The header block (text) and the body of a raw answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body
