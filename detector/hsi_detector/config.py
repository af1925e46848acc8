"""Command line and environment (HSI_<FLAG>) parsing into validated, frozen Settings.

Every flag may also come from the environment variable HSI_<FLAG_UPPER_SNAKE>; the flag wins.
Anything that would make the server unsafe or unusable raises ConfigError (exit status 2).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import importlib.util
import ipaddress
import os
from pathlib import Path
import sys

from hsi_detector.keys import digest, key_problem, split_keys

ENGINES = ("ultralytics", "tflite")
RUNTIMES = ("torch", "openvino", "onnx", "auto")
HALF_MODES = ("auto", "on", "off")
TLS_MODES = ("disabled", "self-signed", "provided")
NETWORK_MODES = ("standalone", "addon")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_TLS_DIR = Path.home() / ".hsi_detector" / "tls"
DEFAULT_EXPORT_DIR = Path.home() / ".hsi_detector" / "exports"


class ConfigError(ValueError):
    """The configuration is refused; the message is safe to print (never contains a key)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs, validated."""

    host: str = "127.0.0.1"
    port: int = 8765
    engine: str = "ultralytics"
    runtime: str = "auto"
    """Ultralytics engine: torch, or a model exported once to openvino / onnx; auto (default): on
    a CPU the first of openvino, onnx, torch that works, on CUDA torch."""
    export_dir: Path = DEFAULT_EXPORT_DIR
    """Where exported models are cached between starts."""
    int8_calibration: Path | None = None
    """Opt-in OpenVINO int8: a folder of images to calibrate on (`engines.int8`)."""
    model: str = "yolo11n.pt"
    labels: Path | None = None
    device: str = "auto"
    half: str = "auto"
    imgsz: int = 640
    confidence: float = 0.25
    classes: tuple[str, ...] = ()
    max_batch_size: int | None = None
    """Images per forward pass; None (`auto`): chosen for the device (`engines.auto_batch_size`)."""
    max_batch_wait_ms: float = 4.0
    max_queue: int = 256
    decode_workers: int = 2
    cpu_threads: int = 0
    """Threads of the model on CPU, all passes together; 0: every core (`engines.cpu_threads`)."""
    cpu_streams: int = 0
    """Forward passes run at once on CPU, each with cpu_threads / cpu_streams threads; 0: auto
    (`engines.cpu_streams`: 2 when there are 2 threads or more)."""
    request_timeout: float = 10.0
    key_digests: tuple[bytes, ...] = ()
    tls: str = "disabled"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_dir: Path = DEFAULT_TLS_DIR
    tls_client_ca: Path | None = None
    allow_plaintext: bool = False
    network_mode: str = "standalone"
    max_body_mb: float = 10.0
    max_pixels: int = 40_000_000
    max_request_pixels: int = 100_000_000
    """Pixels of all images of one request together (from their headers, before decoding)."""
    header_timeout: float = 10.0
    """Seconds to receive a request's headers (from its first byte, or from connecting)."""
    body_timeout: float = 30.0
    """Seconds to receive a request's whole body."""
    keepalive_timeout: float = 30.0
    """Seconds an idle keep-alive connection stays open."""
    max_connections_per_client: int = 128
    rate_limit: float = 300.0
    auth_fail_limit: int = 10
    log_level: str = "info"
    warmup: bool = True
    key_on_command_line: bool = False
    """--api-key was given as a flag: visible to every local user in `ps`; the server warns."""

    @property
    def loopback_only(self) -> bool:
        """Whether the server listens on loopback only (then a key is optional)."""
        return is_loopback(self.host)

    @property
    def max_body_bytes(self) -> int:
        """The body limit in bytes."""
        return int(self.max_body_mb * 1024 * 1024)


def is_loopback(host: str) -> bool:
    """Whether a listen address is loopback only; names other than localhost count as beyond it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_name(dest: str) -> str:
    return "HSI_" + dest.upper()


def _env_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false")


def _batch_size(raw: str) -> int | None:
    """`auto` (None) or a whole number; argparse and the environment report a ValueError."""
    return None if raw.strip().lower() == "auto" else int(raw)


def build_parser() -> argparse.ArgumentParser:
    """The command line (the contract the add-on and the benchmarks rely on)."""
    p = argparse.ArgumentParser(
        prog="python -m hsi_detector",
        description="Batched object detection server. Each flag may also be set as HSI_<FLAG>.",
    )
    add = p.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8765)
    add("--engine", default="ultralytics", help="ultralytics or tflite")
    add(
        "--runtime",
        default="auto",
        help="ultralytics engine: auto (CPU: openvino, else onnx, else torch; CUDA: torch), torch, "
        "openvino or onnx (exported once, CPU)",
    )
    add("--export-dir", default=None, help="cache of exported models (openvino/onnx runtimes)")
    add(
        "--int8-calibration",
        default=None,
        help="OpenVINO int8 (opt-in): quantize the model once, calibrated on the images in this "
        "folder (e.g. the cameras' snapshots)",
    )
    add("--model", default=None, help="model name or path (*.yaml builds random weights)")
    add("--labels", default=None, help="TFLite labelmap")
    add("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add("--half", default="auto", help="fp16 on CUDA: auto, on or off")
    add("--imgsz", type=int, default=640)
    add("--confidence", type=float, default=0.25, help="default minimum confidence")
    add("--classes", default="", help="comma separated class names to report (default: all)")
    add(
        "--max-batch-size",
        type=_batch_size,
        default=None,
        help="images per forward pass: auto (1 on CPU, 16 on CUDA) or 1..512",
    )
    add("--max-batch-wait-ms", type=float, default=4.0)
    add("--max-queue", type=int, default=256)
    add("--decode-workers", type=int, default=2)
    add("--cpu-threads", type=int, default=0, help="threads of the model on CPU, 0: all cores")
    add(
        "--cpu-streams",
        type=int,
        default=0,
        help="forward passes at once on CPU, sharing the threads; 0: auto (2 with 2+ threads)",
    )
    add("--request-timeout", type=float, default=10.0)
    add(
        "--api-key",
        default=None,
        help="one or more keys, comma separated (prefer HSI_API_KEY: flags show in `ps`)",
    )
    add("--api-key-file", default=None)
    add("--tls", default="disabled", help="disabled, self-signed or provided")
    add("--tls-cert", default=None)
    add("--tls-key", default=None)
    add("--tls-dir", default=None, help="where the self-signed certificate is kept")
    add("--tls-client-ca", default=None, help="require client certificates signed by this CA")
    add("--allow-plaintext", action="store_true", default=None)
    add("--network-mode", default="standalone", help="standalone or addon")
    add("--max-body-mb", type=float, default=10.0)
    add("--max-pixels", type=int, default=40_000_000, help="pixels of one image")
    add(
        "--max-request-pixels",
        type=int,
        default=100_000_000,
        help="pixels of all images of one request together",
    )
    add("--header-timeout", type=float, default=10.0, help="seconds to send a request's headers")
    add("--body-timeout", type=float, default=30.0, help="seconds to send a request's body")
    add("--keepalive-timeout", type=float, default=30.0, help="seconds an idle connection stays")
    add(
        "--max-connections-per-client",
        type=int,
        default=128,
        help="open connections per client address (one Home Assistant uses one per camera)",
    )
    add(
        "--rate-limit",
        type=float,
        default=300.0,
        help="requests/s per client address (one Home Assistant sends for all its cameras), 0 off",
    )
    add("--auth-fail-limit", type=int, default=10)
    add("--log-level", default="info")
    add("--warmup", action=argparse.BooleanOptionalAction, default=None)
    return p


_BOOL_FLAGS = {"allow_plaintext": False, "warmup": True}


def _apply_env(parser: argparse.ArgumentParser, env: dict[str, str]) -> None:
    """Environment values become defaults, so a flag on the command line still wins."""
    defaults: dict[str, object] = {}
    for action in parser._actions:  # argparse has no public iterator over its actions
        dest = action.dest
        name = _env_name(dest)
        if dest == "help" or name not in env:
            continue
        raw = env[name]
        if dest in _BOOL_FLAGS:
            defaults[dest] = _env_bool(name, raw)
        elif action.type is not None:
            try:
                defaults[dest] = action.type(raw)  # type: ignore[operator]
            except ValueError as err:
                raise ConfigError(f"{name} is not a valid value") from err
        else:
            defaults[dest] = raw
    parser.set_defaults(**defaults)


def packaged_tflite_model() -> Path | None:
    """The SSD MobileNet COCO model shipped inside fhempy, when that package is installed."""
    spec = importlib.util.find_spec("fhempy")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "lib/object_detection/detect.tflite"
    return path if path.is_file() else None


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"--{name} must be one of {', '.join(choices)}")
    return value


def _range[N: (int, float)](name: str, value: N, low: N, high: N) -> N:
    if not low <= value <= high:
        raise ConfigError(f"--{name} must be between {low} and {high}")
    return value


def _batch_range(value: int | None) -> int | None:
    return None if value is None else _range("max-batch-size", value, 1, 512)


def _read_keys(ns: argparse.Namespace) -> list[str]:
    keys = split_keys(ns.api_key or "")
    if ns.api_key_file:
        try:
            keys += split_keys(Path(ns.api_key_file).read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"cannot read --api-key-file: {err.strerror}") from err
    for index, key in enumerate(keys, start=1):
        if problem := key_problem(key):
            raise ConfigError(f"API key #{index} {problem}; use e.g. `openssl rand -hex 32`")
    return keys


def _device(value: str) -> str:
    if value in {"auto", "cpu", "cuda"}:
        return value
    prefix, _, index = value.partition(":")
    if prefix == "cuda" and index.isdigit():
        return value
    raise ConfigError("--device must be auto, cpu, cuda or cuda:N")


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _model(engine: str, model: str | None) -> str:
    if model:
        return model
    if engine == "ultralytics":
        return "yolo11n.pt"
    packaged = packaged_tflite_model()
    if packaged is None:
        raise ConfigError("--engine tflite needs --model (the packaged model is not installed)")
    return str(packaged)


def parse_settings(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Parse and validate; raises ConfigError for anything refused."""
    parser = build_parser()
    _apply_env(parser, dict(os.environ) if env is None else env)
    ns = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    on_command_line = any(a == "--api-key" or a.startswith("--api-key=") for a in given)
    engine = _choice("engine", ns.engine, ENGINES)
    tls = _choice("tls", ns.tls, TLS_MODES)
    network_mode = _choice("network-mode", ns.network_mode, NETWORK_MODES)
    keys = _read_keys(ns)
    settings = Settings(
        host=ns.host,
        port=_range("port", ns.port, 0, 65535),
        engine=engine,
        runtime=_choice("runtime", ns.runtime, RUNTIMES),
        export_dir=_path(ns.export_dir) or DEFAULT_EXPORT_DIR,
        int8_calibration=_path(ns.int8_calibration),
        model=_model(engine, ns.model),
        labels=_path(ns.labels),
        device=_device(ns.device),
        half=_choice("half", ns.half, HALF_MODES),
        imgsz=_range("imgsz", ns.imgsz, 32, 4096),
        confidence=_range("confidence", ns.confidence, 0.0, 1.0),
        classes=tuple(c.strip() for c in ns.classes.split(",") if c.strip()),
        max_batch_size=_batch_range(ns.max_batch_size),
        max_batch_wait_ms=_range("max-batch-wait-ms", ns.max_batch_wait_ms, 0.0, 1000.0),
        max_queue=_range("max-queue", ns.max_queue, 1, 100_000),
        decode_workers=_range("decode-workers", ns.decode_workers, 1, 64),
        cpu_threads=_range("cpu-threads", ns.cpu_threads, 0, 1024),
        cpu_streams=_range("cpu-streams", ns.cpu_streams, 0, 64),
        request_timeout=_range("request-timeout", ns.request_timeout, 0.1, 600.0),
        key_digests=tuple(digest(k) for k in keys),
        tls=tls,
        tls_cert=_path(ns.tls_cert),
        tls_key=_path(ns.tls_key),
        tls_dir=_path(ns.tls_dir) or DEFAULT_TLS_DIR,
        tls_client_ca=_path(ns.tls_client_ca),
        allow_plaintext=bool(ns.allow_plaintext),
        network_mode=network_mode,
        max_body_mb=_range("max-body-mb", ns.max_body_mb, 0.01, 1024.0),
        max_pixels=_range("max-pixels", ns.max_pixels, 1, 1_000_000_000),
        max_request_pixels=_range("max-request-pixels", ns.max_request_pixels, 1, 10_000_000_000),
        header_timeout=_range("header-timeout", ns.header_timeout, 0.1, 600.0),
        body_timeout=_range("body-timeout", ns.body_timeout, 0.1, 3600.0),
        keepalive_timeout=_range("keepalive-timeout", ns.keepalive_timeout, 0.1, 3600.0),
        max_connections_per_client=_range(
            "max-connections-per-client", ns.max_connections_per_client, 1, 100_000
        ),
        rate_limit=_range("rate-limit", ns.rate_limit, 0.0, 1_000_000.0),
        auth_fail_limit=_range("auth-fail-limit", ns.auth_fail_limit, 0, 1_000_000),
        log_level=_choice("log-level", ns.log_level.lower(), LOG_LEVELS),
        warmup=_BOOL_FLAGS["warmup"] if ns.warmup is None else bool(ns.warmup),
        key_on_command_line=on_command_line,
    )
    _check_security(settings)
    return settings


def _check_security(s: Settings) -> None:
    if not s.loopback_only and not s.key_digests:
        raise ConfigError(
            f"listening on {s.host} (beyond loopback) requires an API key "
            "(HSI_API_KEY, --api-key-file or --api-key)"
        )
    if s.int8_calibration is not None:
        if s.engine != "ultralytics" or s.runtime not in {"openvino", "auto"}:
            raise ConfigError("--int8-calibration needs --runtime openvino or auto")
        if not s.int8_calibration.is_dir():
            raise ConfigError(f"--int8-calibration {s.int8_calibration} is not a folder")
    if s.tls == "provided" and not (s.tls_cert and s.tls_key):
        raise ConfigError("--tls provided needs --tls-cert and --tls-key")
    if s.tls_client_ca is not None and s.tls == "disabled":
        raise ConfigError("--tls-client-ca needs TLS (--tls self-signed or provided)")
    plaintext_ok = s.loopback_only or s.network_mode == "addon" or s.allow_plaintext
    if s.tls == "disabled" and not plaintext_ok:
        raise ConfigError(
            f"refusing plaintext HTTP on {s.host}: enable --tls self-signed|provided, "
            "or pass --allow-plaintext on a trusted network"
        )
