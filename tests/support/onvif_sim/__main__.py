"""Run the simulated ONVIF camera as a demo device until interrupted.

    HSI_SIM_PASSWORD=secret python -m tests.support.onvif_sim --host 127.0.0.1 --port 8899 \
        [--announce] [--scene demo]

The password comes from HSI_SIM_PASSWORD (or --password, which `ps` shows to every local user).

`--announce` also publishes it by WS-Discovery so ONVIF discovery (e.g. Home Assistant's) finds it.
`--scene demo` makes the snapshots play the demo scene (a person walks in, stays and leaves, in a
100 s loop) instead of rotating through the sample images; its PullPoint motion events follow the
scene (on while the person is in view, 20-70 s of each loop), so detection speeds up visibly.
`--rtsp-port` is where the RTSP server of the profiles' streams listens (the same pictures as the
snapshots, H.264, digest authentication with the camera's credentials; -1 = no RTSP server; by
default 8554, or any free port when --port is 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time

from .announce import Announcer
from .config import SimConfig
from .events import follow_motion, scene_motion
from .media import RTSP_PORT
from .rtsp import RtspServer
from .scene import SCENES
from .server import OnvifSimulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.onvif_sim", description=__doc__)
    defaults = SimConfig()
    parser.add_argument("--host", default="127.0.0.1", help="address to bind and advertise")
    parser.add_argument("--port", type=int, default=8899, help="HTTP port (0 = any free port)")
    parser.add_argument("--username", default=defaults.username)
    parser.add_argument(
        "--password", default=os.environ.get("HSI_SIM_PASSWORD") or defaults.password
    )
    parser.add_argument("--serial", default=defaults.serial)
    parser.add_argument("--mac", default=defaults.mac)
    parser.add_argument("--announce", action="store_true", help="publish via WS-Discovery")
    parser.add_argument(
        "--motion-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="toggle motion on/off every SECONDS (0 = never)",
    )
    parser.add_argument("--clock-skew", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument(
        "--scene", choices=sorted(SCENES), default=None, help="snapshots play this scene"
    )
    parser.add_argument(
        "--rtsp-port",
        type=int,
        default=None,
        help=f"RTSP port (default {RTSP_PORT}; 0 = any free, -1 = none)",
    )
    return parser.parse_args(argv)


async def _toggle_motion(simulator: OnvifSimulator, every: float) -> None:
    active = False
    while True:
        await asyncio.sleep(every)
        active = not active
        simulator.set_motion(active)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT/SIGTERM."""
    config = SimConfig(
        username=args.username, password=args.password, serial=args.serial, mac=args.mac
    )
    if args.scene:
        # Composing the frames takes about a second of CPU: not on the event loop.
        config.scene = await asyncio.to_thread(SCENES[args.scene], time.monotonic)
    simulator = OnvifSimulator(config)
    simulator.clock_skew = args.clock_skew
    await simulator.start(args.host, args.port)
    rtsp: RtspServer | None = None
    rtsp_port = args.rtsp_port
    if rtsp_port is None:
        rtsp_port = 0 if args.port == 0 else RTSP_PORT
    if rtsp_port >= 0:
        rtsp = RtspServer(config)
        await rtsp.start(args.host, rtsp_port)
        simulator.rtsp_port = rtsp.port
    announcer: Announcer | None = None
    if args.announce:
        announcer = Announcer(simulator)
        await asyncio.to_thread(announcer.start)
    # The password is not printed: this line ends up in log files.
    print(
        f"ONVIF simulator ready: host={simulator.host} port={simulator.port} "
        f"username={config.username} "
        f"device_service={simulator.url}/onvif/device_service "
        f"announce={'yes' if announcer else 'no'} "
        f"scene={args.scene or 'none'} "
        f"rtsp={rtsp.url + '/' + config.profiles[0].token if rtsp else 'none'}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    motion: asyncio.Task[None] | None = None
    if args.motion_every > 0:
        motion = asyncio.create_task(_toggle_motion(simulator, args.motion_every))
    elif config.scene is not None:
        motion = asyncio.create_task(
            follow_motion(simulator.set_motion, scene_motion(config.scene))
        )
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if motion is not None:
            motion.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await motion
        if announcer is not None:
            await asyncio.to_thread(announcer.stop)
        if rtsp is not None:
            await rtsp.stop()
        await simulator.stop()
        print("ONVIF simulator stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(serve(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
