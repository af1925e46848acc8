"""A real WS-Discovery probe and match between two network namespaces joined by a veth pair.

The simulator announces itself with ThreadedWSPublishing in one namespace; discover_cameras() runs
in the other, in a subprocess, and must find it. Needs root and iproute2 (CI runs as root).
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
PORT = 8899
READY_TIMEOUT = 60.0

PROBE = """
import dataclasses, json
from custom_components.home_security_intel.onvif.discovery import discover_cameras
print(json.dumps([dataclasses.asdict(c) for c in discover_cameras(timeout=4.0)]))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str, str, str]]:
    """Two namespaces joined by a veth pair: (camera ns, camera ip, client ns, client ip)."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 'ip' is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    tag = f"{os.getpid() % 100000}"
    subnet = 1 + os.getpid() % 250
    cam_ns, cli_ns = f"hsi-cam-{tag}", f"hsi-cli-{tag}"
    cam_if, cli_if = f"hsic{tag}", f"hsil{tag}"
    cam_ip, cli_ip = f"10.77.{subnet}.1", f"10.77.{subnet}.2"
    created: list[str] = []
    try:
        for ns in (cam_ns, cli_ns):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("link", "add", cam_if, "type", "veth", "peer", "name", cli_if)
        _ip("link", "set", cam_if, "netns", cam_ns)
        _ip("link", "set", cli_if, "netns", cli_ns)
        for ns, iface, address in ((cam_ns, cam_if, cam_ip), (cli_ns, cli_if, cli_ip)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", iface)
            _ip("-n", ns, "link", "set", iface, "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", iface)
        yield cam_ns, cam_ip, cli_ns, cli_ip
    finally:
        # Deleting a namespace deletes the veth end inside it, and with it the peer.
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)
        leftover = subprocess.run(
            ["ip", "netns", "list"], check=False, capture_output=True, text=True, timeout=30
        ).stdout
        assert cam_ns not in leftover
        assert cli_ns not in leftover


def _wait_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "ONVIF simulator ready" in line:
            return line
    process.kill()
    raise AssertionError(f"simulator did not start: {process.communicate()}")


def test_discovers_simulator_in_other_namespace(
    namespaces: tuple[str, str, str, str],
) -> None:
    cam_ns, cam_ip, cli_ns, _ = namespaces
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    simulator = subprocess.Popen(
        [
            "ip", "netns", "exec", cam_ns, sys.executable, "-m", "tests.support.onvif_sim",
            "--host", cam_ip, "--port", str(PORT), "--announce",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        _wait_ready(simulator)
        probe = subprocess.run(
            ["ip", "netns", "exec", cli_ns, sys.executable, "-c", PROBE],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        simulator.terminate()
        try:
            simulator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.wait()

    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert len(found) == 1, found
    camera = found[0]
    assert (camera["host"], camera["port"]) == (cam_ip, PORT)
    assert camera["name"] == "SimCam 4K"  # URL-decoded from onvif://www.onvif.org/name/SimCam%204K
    assert camera["hardware"] == "simcam-hw1"
    assert camera["xaddr"] == f"http://{cam_ip}:{PORT}/onvif/device_service"
    assert "onvif://www.onvif.org/Profile/Streaming" in camera["scopes"]
