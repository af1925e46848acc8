"""Consistency of the HSI Detector add-on with the server it packages.

config.yaml (options + schema), translations/en.yaml and run.sh must agree with each other and with
`python -m hsi_detector`: every option has a schema entry the Supervisor accepts and a translation,
run.sh turns every option into a flag the real server parses to the intended setting, and the
version matches `hsi_detector.__version__`.

The add-on holds no copy of the server: its Dockerfile pip-installs the `hsi-detector` distribution
(detector/) from this repository at the tag v<version>, or a development wheel put in dist/. So the
wheel that detector/ builds is checked here (exactly the package, the add-on's version, the
requirements), and the Dockerfile's install step is run for real with pip and apt-get recorded.

Run with the detector's environment:  .venv-detector/bin/python -m pytest addon/tests
"""

from __future__ import annotations

from collections.abc import Callable
import configparser
from email.parser import Parser
import fnmatch
import json
import os
from pathlib import Path
import re
import secrets
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from typing import Any
import zipfile

from packaging.requirements import Requirement
from PIL import Image
import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the detector venv

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "addon" / "hsi_detector"
RUN_SH = ADDON / "rootfs" / "run.sh"
DOCKERFILE = ADDON / "Dockerfile"
DETECTOR = REPO / "detector"
PACKAGE = "hsi_detector"
# The console script the wheel declares and run.sh execs: the image's only way to start the server.
CONSOLE_SCRIPT = "hsi-detector"
# Where the Dockerfile puts the add-on's dist/ folder inside the image during the build.
PIP = (sys.executable, "-m", "pip")  # the detector venv's pip, as in the brief
DIST_IN_IMAGE = "/tmp/hsi-dist"  # noqa: S108 - a path in the image being built, not on this machine
sys.path.insert(0, str(REPO / "detector"))

import hsi_detector  # noqa: E402 - importable only once detector/ is on the path
from hsi_detector.config import Settings, parse_settings  # noqa: E402
from hsi_detector.keys import digest  # noqa: E402
from hsi_detector.tls import ensure_self_signed, fingerprint  # noqa: E402

# Copied from the Supervisor (supervisor/addons/options.py, RE_SCHEMA_ELEMENT): a schema element
# outside this grammar makes the Supervisor drop the whole add-on from the store, silently.
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)

# Server flags that are deliberately no add-on option (run.sh's header says why).
NOT_OPTIONS = {"--help", "--api-key", "--api-key-file", "--allow-plaintext"}

# bashio itself is only installed in the add-on image (downloaded from GitHub, unreachable here).
# This shim reimplements the functions run.sh uses with the semantics of bashio's lib/config.sh: a
# missing option prints "null", a list one element per line, an empty list or string nothing.
BASHIO_SHIM = r"""
bashio::config() {
    "${SHIM_PYTHON}" - "${SHIM_OPTIONS}" "$1" <<'PY'
import json, sys
value = json.load(open(sys.argv[1])).get(sys.argv[2])
if value is None:
    print("null", end="")
elif isinstance(value, bool):
    print("true" if value else "false", end="")
elif isinstance(value, list):
    print("\n".join(str(v) for v in value), end="")
else:
    print(value, end="")
PY
}
bashio::config.has_value() { local v; v=$(bashio::config "$1"); [[ "$v" != "null" && -n "$v" ]]; }
bashio::config.equals() { [[ "$(bashio::config "$1")" == "$2" ]]; }
bashio::config.true() { [[ "$(bashio::config "$1")" == "true" ]]; }
bashio::config.require() {
    bashio::config.has_value "$1" || { echo "FATAL: set the '$1' option" >&2; exit 1; }
}
bashio::log.info() { echo "INFO: $*" >&2; }
bashio::log.warning() { echo "WARNING: $*" >&2; }
bashio::addon.hostname() { printf '%s' "${SHIM_HOSTNAME:-a0d7b954-hsi-detector}"; }
# Supervisor discovery: recorded (service, then the config JSON) when the test asks for it.
bashio::discovery() {
    [[ -n "${SHIM_DISCOVERY:-}" ]] || return 1
    printf '%s\n%s\n' "$1" "$2" > "${SHIM_DISCOVERY}.tmp"
    mv "${SHIM_DISCOVERY}.tmp" "${SHIM_DISCOVERY}"
}
"""

# Stands in for the image's installed console script: the test sees exactly what run.sh would exec.
FAKE_SERVER = """#!/bin/sh
exec "$SHIM_PYTHON" -c 'import json, os, sys
json.dump({"program": os.path.basename(sys.argv[1]), "argv": sys.argv[2:], "cwd": os.getcwd(),
           "env": {k: v for k, v in os.environ.items() if k.startswith("HSI_")}},
          open(os.environ["SHIM_RECORD"], "w"))' "$0" "$@"
"""

# Stand-ins for pip and apt-get in the Dockerfile's install step: what they were asked to do is the
# result (the network install itself cannot run here: no GitHub, no Debian mirror inside a build).
FAKE_TOOL = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$TOOL_LOG"
"""


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = _load_yaml(ADDON / "config.yaml")
    return loaded


@pytest.fixture(scope="module")
def translations() -> dict[str, Any]:
    loaded: dict[str, Any] = _load_yaml(ADDON / "translations" / "en.yaml")
    return loaded


@pytest.fixture(scope="module")
def server_flags() -> set[str]:
    """Every flag the real server's --help lists."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "hsi_detector", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "detector")),
        timeout=120,
    )
    return set(re.findall(r"--[a-z0-9][a-z0-9-]*", result.stdout))


@pytest.fixture
def run_addon(tmp_path: Path) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Run run.sh with the given options.json; returns the argv, cwd and HSI_* env it execs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / CONSOLE_SCRIPT
    fake.write_text(FAKE_SERVER, encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    shim = tmp_path / "bashio_shim.sh"
    shim.write_text(BASHIO_SHIM, encoding="utf-8")

    def run(options: dict[str, Any]) -> dict[str, Any]:
        options_file, record = tmp_path / "options.json", tmp_path / "record.json"
        options_file.write_text(json.dumps(options), encoding="utf-8")
        record.unlink(missing_ok=True)
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "BASH_ENV": str(shim),
            "SHIM_PYTHON": sys.executable,
            "SHIM_OPTIONS": str(options_file),
            "SHIM_RECORD": str(record),
            "ADDON_DATA_DIR": str(tmp_path / "data"),
            "ADDON_SSL_DIR": "/ssl",
        }
        done = subprocess.run(  # noqa: S603 - the repository's own script
            ["bash", str(RUN_SH)],  # noqa: S607 - bash from PATH, as the image's shebang does
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        recorded: dict[str, Any] = {"returncode": done.returncode, "stderr": done.stderr}
        if record.is_file():
            recorded |= json.loads(record.read_text(encoding="utf-8"))
        return recorded

    return run


def _user_options(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What the Supervisor writes to /data/options.json: the defaults, the user's key, changes."""
    return {**config["options"], "api_key": secrets.token_urlsafe(32), **changes}


def _settings(recorded: dict[str, Any]) -> Settings:
    """What the real server makes of the command line and environment run.sh produced."""
    assert recorded["returncode"] == 0, recorded["stderr"]
    assert recorded["program"] == CONSOLE_SCRIPT
    return parse_settings(recorded["argv"], recorded["env"])


def test_manifest_has_what_the_supervisor_requires(config: dict[str, Any]) -> None:
    for key in ("name", "version", "slug", "description", "arch", "startup", "boot"):
        assert config.get(key), key
    assert config["slug"] == ADDON.name
    assert set(config["arch"]) == {"amd64", "aarch64"}
    assert config["ports"] == {"8765/tcp": 8765}
    assert set(config["ports_description"]) == {"8765/tcp"}
    assert set(config["map"]) == {"ssl", "share"}
    assert not config.get("host_network", False)
    assert "image" not in config  # built locally from the Dockerfile, nothing to pull


def test_version_matches_server_and_changelog(config: dict[str, Any]) -> None:
    assert config["version"] == hsi_detector.__version__
    changelog = (ADDON / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {config['version']}" in changelog


def test_schema_elements_are_valid_supervisor_syntax(config: dict[str, Any]) -> None:
    for key, element in config["schema"].items():
        elements = element if isinstance(element, list) else [element]
        assert len(elements) == 1, key
        assert RE_SCHEMA_ELEMENT.match(elements[0]), f"{key}: {elements[0]!r}"


def test_every_option_has_a_schema_entry_and_a_valid_default(config: dict[str, Any]) -> None:
    schema = config["schema"]
    for key, default in config["options"].items():
        assert key in schema, key
        element = schema[key][0] if isinstance(schema[key], list) else schema[key]
        values = default if isinstance(default, list) else [default]
        for value in values:
            assert _accepts(element, value), f"{key}: default {value!r} breaks {element!r}"


def test_optional_options_have_no_default(config: dict[str, Any]) -> None:
    # A default in `options` silently makes a "?" option mandatory in the Supervisor.
    optional = {k for k, v in config["schema"].items() if isinstance(v, str) and v.endswith("?")}
    assert optional == {"labels", "client_ca", "int8_calibration"}
    assert not optional & set(config["options"])


def test_api_key_is_a_required_password(config: dict[str, Any]) -> None:
    assert config["schema"]["api_key"] == "password(32,)"
    assert "api_key" not in config["options"]  # no default: the add-on waits for the user's key


def test_every_option_is_translated(config: dict[str, Any], translations: dict[str, Any]) -> None:
    translated = translations["configuration"]
    assert set(translated) == set(config["schema"])
    for key, entry in translated.items():
        assert entry.get("name"), key
        assert entry.get("description"), key
    assert set(translations["network"]) == set(config["ports"])


def test_run_sh_reads_every_option(config: dict[str, Any]) -> None:
    script = RUN_SH.read_text(encoding="utf-8")
    read = set(re.findall(r"bashio::config(?:\.\w+)? '(\w+)'", script))
    assert read == set(config["schema"])
    assert RUN_SH.stat().st_mode & stat.S_IXUSR


def test_defaults_become_the_intended_server_settings(
    config: dict[str, Any], run_addon: Callable[[dict[str, Any]], dict[str, Any]], tmp_path: Path
) -> None:
    options = _user_options(config)
    recorded = run_addon(options)
    settings = _settings(recorded)

    assert recorded["cwd"] == str(tmp_path / "data" / "models")
    all_interfaces = "0.0.0.0"  # noqa: S104 - inside the add-on container, by design
    assert (settings.host, settings.port, settings.network_mode) == (all_interfaces, 8765, "addon")
    assert settings.key_digests == (digest(options["api_key"]),)
    assert options["api_key"] not in recorded["argv"]  # never on a command line
    assert settings.tls == "self-signed"
    assert settings.tls_dir == tmp_path / "data" / "tls"
    assert (settings.tls_cert, settings.tls_key, settings.tls_client_ca) == (None, None, None)
    assert settings.labels is None
    assert settings.classes == ()
    assert options["max_batch_size"] == "auto"
    assert settings.max_batch_size is None  # the server's "auto": 1 on a CPU, 16 on CUDA
    assert settings.export_dir == tmp_path / "data" / "exports"
    for key in (
        "engine",
        "runtime",
        "model",
        "device",
        "half",
        "imgsz",
        "confidence",
        "cpu_threads",
        "cpu_streams",
        "max_batch_wait_ms",
        "max_queue",
        "decode_workers",
        "request_timeout",
        "max_body_mb",
        "max_pixels",
        "max_request_pixels",
        "header_timeout",
        "body_timeout",
        "keepalive_timeout",
        "max_connections_per_client",
        "rate_limit",
        "auth_fail_limit",
        "log_level",
        "warmup",
    ):
        assert getattr(settings, key) == options[key], key


def test_the_benchmark_runs_ours_with_exactly_the_addon_defaults(
    config: dict[str, Any], run_addon: Callable[[dict[str, Any]], dict[str, Any]], tmp_path: Path
) -> None:
    """`detector_throughput.py --addon-defaults` starts our server as run.sh does with the default
    options, but for what the benchmark must set otherwise (loopback, model file, folders, logs)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import detector_throughput as bench  # a script folder, put on the path here

    recorded = run_addon(_user_options(config))
    addon = _settings(recorded)
    args = bench.parse_args(["--addon-defaults"])
    ours = parse_settings(bench.addon_flags(args, 8765, tmp_path / "tls"), recorded["env"])
    compared = [f for f in Settings.__dataclass_fields__ if f not in bench.ADDON_OVERRIDES]
    assert len(compared) > 30
    differing = [f for f in compared if getattr(ours, f) != getattr(addon, f)]
    assert differing == []
    assert (ours.tls, ours.rate_limit, ours.network_mode) == ("self-signed", 300, "addon")
    assert ours.model == "yolo11n.yaml"  # the add-on's network, built without a download
    assert ours.host == "127.0.0.1"


def test_every_other_value_reaches_the_server(
    config: dict[str, Any], run_addon: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    changes: dict[str, Any] = {
        "engine": "tflite",
        "runtime": "openvino",
        "model": "/share/hsi_detector/detect.tflite",
        "labels": "/share/hsi_detector/labels.txt",
        "device": "cuda:1",
        "half": "off",
        "imgsz": 320,
        "confidence": 0.4,
        "classes": ["person", "car"],
        "max_batch_size": "8",  # a string: the schema is a match() so that "auto" fits too
        "max_batch_wait_ms": 2.5,
        "max_queue": 64,
        "decode_workers": 3,
        "cpu_threads": 2,
        "cpu_streams": 1,
        "request_timeout": 5.5,
        "tls": "provided",
        "certfile": "my-chain.pem",
        "keyfile": "/share/keys/my-key.pem",
        "client_ca": "clients-ca.pem",
        "max_body_mb": 4,
        "max_pixels": 1000000,
        "max_request_pixels": 5000000,
        "header_timeout": 4.5,
        "body_timeout": 12,
        "keepalive_timeout": 8,
        "max_connections_per_client": 16,
        "rate_limit": 0,
        "auth_fail_limit": 3,
        "log_level": "debug",
        "warmup": False,
    }
    settings = _settings(run_addon(_user_options(config, **changes)))

    assert settings.tls == "provided"
    assert settings.tls_cert == Path("/ssl/my-chain.pem")
    assert settings.tls_key == Path("/share/keys/my-key.pem")  # absolute paths are kept
    assert settings.tls_client_ca == Path("/ssl/clients-ca.pem")
    assert settings.labels == Path(changes["labels"])
    assert settings.classes == ("person", "car")
    assert settings.max_batch_size == 8
    for key, value in changes.items():
        if key not in {
            "tls",
            "certfile",
            "keyfile",
            "client_ca",
            "labels",
            "classes",
            "max_batch_size",
        }:
            assert getattr(settings, key) == value, key


def test_run_sh_flags_are_exactly_the_servers(
    config: dict[str, Any],
    run_addon: Callable[[dict[str, Any]], dict[str, Any]],
    server_flags: set[str],
) -> None:
    used: set[str] = set()
    for changes in (
        {},
        {"tls": "provided", "client_ca": "ca.pem", "labels": "l.txt", "classes": ["cat"]},
        {"warmup": False, "int8_calibration": "/share/hsi_detector/frames"},
    ):
        recorded = run_addon(_user_options(config, **changes))
        assert recorded["returncode"] == 0, recorded["stderr"]
        used |= {arg for arg in recorded["argv"] if arg.startswith("--")}
    assert used <= server_flags, used - server_flags
    # Every server flag is either set by run.sh or deliberately left out.
    assert server_flags - used == NOT_OPTIONS


def test_missing_api_key_stops_before_the_server(
    config: dict[str, Any], run_addon: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    recorded = run_addon(dict(config["options"]))
    assert recorded["returncode"] != 0
    assert "argv" not in recorded  # the server was never started
    assert "api_key" in recorded["stderr"]


# The discovery tests' server: records like FAKE_SERVER, then keeps running as the real one does,
# so that run.sh's announcement (which gives up when the server is gone) gets to announce.
LIVING_SERVER = """#!/bin/sh
exec "$SHIM_PYTHON" -c 'import json, os, sys, time
json.dump({"argv": sys.argv[1:]}, open(os.environ["SHIM_RECORD"], "w"))
time.sleep(120)' "$@"
"""
# curl in the image checks the server's /health: here it says "up" and records the URL.
FAKE_CURL = """#!/bin/sh
printf '%s\\n' "$*" >> "$CURL_LOG"
"""


def _announced(tmp_path: Path, options: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """Run run.sh until it announces itself: the service, the config JSON, the curl calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in ((CONSOLE_SCRIPT, LIVING_SERVER), ("curl", FAKE_CURL)):
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    shim = tmp_path / "bashio_shim.sh"
    shim.write_text(BASHIO_SHIM, encoding="utf-8")
    options_file, discovery = tmp_path / "options.json", tmp_path / "discovery.txt"
    options_file.write_text(json.dumps(options), encoding="utf-8")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "BASH_ENV": str(shim),
        "SHIM_PYTHON": sys.executable,
        "SHIM_OPTIONS": str(options_file),
        "SHIM_RECORD": str(tmp_path / "record.json"),
        "SHIM_DISCOVERY": str(discovery),
        "CURL_LOG": str(tmp_path / "curl.log"),
        "ADDON_DATA_DIR": str(tmp_path / "data"),
        "ADDON_SSL_DIR": str(tmp_path / "ssl"),
    }
    proc = subprocess.Popen(  # noqa: S603 - the repository's own script
        ["bash", str(RUN_SH)],  # noqa: S607 - bash from PATH, as the image's shebang does
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not discovery.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(30)
    service, config = discovery.read_text(encoding="utf-8").split("\n", 1)
    return service, json.loads(config), (tmp_path / "curl.log").read_text(encoding="utf-8")


def _pin(cert: Path) -> str:
    return fingerprint(cert).replace(":", "").lower()


def test_config_asks_for_discovery(config: dict[str, Any]) -> None:
    assert config["discovery"] == ["home_security_intel"]


def test_discovery_hands_over_key_and_fingerprint(config: dict[str, Any], tmp_path: Path) -> None:
    # The certificate the server makes on first start (made here as the server would).
    cert, _ = ensure_self_signed(tmp_path / "data" / "tls", "0.0.0.0")  # noqa: S104 - as in the add-on
    options = _user_options(config)
    service, announced, curl = _announced(tmp_path, options)
    assert service == "home_security_intel"
    assert announced == {
        "host": "a0d7b954-hsi-detector",
        "port": 8765,
        "api_key": options["api_key"],
        "tls": True,
        "fingerprint": _pin(cert),
    }
    assert "https://127.0.0.1:8765/health" in curl


def test_discovery_of_a_provided_certificate(config: dict[str, Any], tmp_path: Path) -> None:
    cert, _ = ensure_self_signed(tmp_path / "made", "detector.example.com")
    (tmp_path / "ssl").mkdir()
    shutil.copy(cert, tmp_path / "ssl" / "fullchain.pem")
    _, announced, _ = _announced(tmp_path, _user_options(config, tls="provided"))
    assert announced["fingerprint"] == _pin(cert)


def test_discovery_without_tls(config: dict[str, Any], tmp_path: Path) -> None:
    _, announced, curl = _announced(tmp_path, _user_options(config, tls="disabled"))
    assert (announced["tls"], announced["fingerprint"]) == (False, None)
    assert "http://127.0.0.1:8765/health" in curl


def test_build_bases_cover_every_arch(config: dict[str, Any]) -> None:
    build = _load_yaml(ADDON / "build.yaml")
    assert set(build["build_from"]) == set(config["arch"])
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "FROM ${BUILD_FROM}" in dockerfile
    assert f"ARG BASHIO_VERSION={build['args']['BASHIO_VERSION']}" in dockerfile
    assert 'CMD ["/run.sh"]' in dockerfile


def test_images_and_repository() -> None:
    with Image.open(ADDON / "icon.png") as icon:
        assert icon.size == (128, 128)
    with Image.open(ADDON / "logo.png") as logo:
        assert logo.size == (250, 100)
    repository = _load_yaml(REPO / "repository.yaml")
    assert repository["url"] == "https://github.com/home-security-intel/home_security_intel"
    assert repository["name"]
    assert repository["maintainer"]


# --- the server as a package: the wheel detector/ builds, and the Dockerfile that installs it ----


def _build_junk(directory: str, names: list[str]) -> set[str]:
    """What a working checkout may hold besides the sources: stale build output must not leak in."""
    del directory
    patterns = ("__pycache__", "*.py[co]", "build", "dist", "*.egg-info", ".coverage*", ".*_cache")
    return {name for name in names if any(fnmatch.fnmatch(name, p) for p in patterns)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from detector/ (from a clean copy: an in-tree build writes build/)."""
    root = tmp_path_factory.mktemp("wheel")
    source, out = root / "detector", root / "out"
    shutil.copytree(DETECTOR, source, ignore=_build_junk)
    subprocess.run(  # noqa: S603 - our own interpreter building our own project
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def _dist_info(archive: zipfile.ZipFile, name: str) -> str:
    (member,) = [m for m in archive.namelist() if m.endswith(f".dist-info/{name}")]
    return archive.read(member).decode("utf-8")


EXTRAS = ("server", "tflite", "ultralytics")


def _requirements(name: str) -> list[Requirement]:
    lines = (DETECTOR / name).read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in (raw.split("#", 1)[0].strip() for raw in lines) if line]


def test_requirements_txt_is_every_part() -> None:
    """.venv-detector installs requirements.txt: the core library and every extra, nothing else."""
    lines = (DETECTOR / "requirements.txt").read_text(encoding="utf-8").splitlines()
    included = [line.split()[1] for line in lines if line.startswith("-r ")]
    assert included == ["requirements-core.txt"] + [f"requirements-{e}.txt" for e in EXTRAS]
    assert all(line.startswith(("#", "-r ")) for line in lines if line.strip())


def test_the_library_alone_needs_only_numpy_and_pillow() -> None:
    """What Home Assistant installs: lower bounds only, met by core's own pins."""
    core = _requirements("requirements-core.txt")
    assert sorted(r.name.lower() for r in core) == ["numpy", "pillow"]
    for requirement, pinned_by_core in zip(core, ("2.3.2", "12.3.0"), strict=True):
        assert requirement.specifier.contains(pinned_by_core)
        assert all(spec.operator == ">=" for spec in requirement.specifier)


def test_wheel_holds_exactly_the_server_package(wheel: Path) -> None:
    package = DETECTOR / PACKAGE
    sources = {
        p.relative_to(DETECTOR).as_posix(): p.read_bytes()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }
    assert f"{PACKAGE}/__init__.py" in sources
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        code = {n: archive.read(n) for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
        metadata = {n.split("/", 1)[1] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    assert code == sources  # every file of the package, byte for byte, and nothing else (no tests/)
    assert {"METADATA", "WHEEL", "RECORD", "entry_points.txt"} <= metadata
    assert metadata <= {"METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt"}


def test_wheel_is_the_addon_version_with_the_servers_requirements(
    wheel: Path, config: dict[str, Any]
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = Parser().parsestr(_dist_info(archive, "METADATA"))
    assert metadata["Name"] == "hsi-detector"
    assert metadata["Version"] == config["version"] == hsi_detector.__version__
    assert wheel.name == f"{PACKAGE}-{config['version']}-py3-none-any.whl"
    project = tomllib.loads((DETECTOR / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert metadata["Requires-Python"] == project["requires-python"]
    required = [str(Requirement(r)) for r in metadata.get_all("Requires-Dist") or []]
    expected = [str(r) for r in _requirements("requirements-core.txt")]
    for extra in EXTRAS:
        expected += [f'{r}; extra == "{extra}"' for r in _requirements(f"requirements-{extra}.txt")]
    assert required == expected
    assert metadata.get_all("Provides-Extra") == list(EXTRAS)
    assert len(required) > len(EXTRAS)  # empty files would make the comparison vacuous


def test_wheel_console_script_is_what_run_sh_starts(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry_points = configparser.ConfigParser()
        entry_points.read_string(_dist_info(archive, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == {CONSOLE_SCRIPT: "hsi_detector.server:main"}
    assert re.search(rf'^exec {CONSOLE_SCRIPT} "\$\{{args\[@\]\}}"$', RUN_SH.read_text(), re.M)


def test_installed_wheel_starts_the_server(
    wheel: Path, server_flags: set[str], tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(  # noqa: S603 - our own interpreter installing the wheel just built
        [*PIP, "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # Only the installed copy is importable, not detector/: cwd elsewhere, PYTHONPATH the target.
    env = dict(os.environ, PYTHONPATH=str(target))
    where = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", "import hsi_detector; print(hsi_detector.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert Path(where.stdout.strip()).is_relative_to(target)
    helped = subprocess.run(  # noqa: S603 - the console script pip just wrote
        [str(target / "bin" / CONSOLE_SCRIPT), "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert set(re.findall(r"--[a-z0-9][a-z0-9-]*", helped.stdout)) == server_flags


def _install_step() -> str:
    """The Dockerfile's RUN that installs the server, as the shell command Docker runs."""
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"COPY dist/ {DIST_IN_IMAGE}/") + 1
    assert lines[start].startswith("RUN ")
    step = []
    for line in lines[start:]:
        step.append(line.removesuffix("\\"))
        if not line.endswith("\\"):
            break
    return "".join(step).removeprefix("RUN ")  # Docker drops backslash-newline


def test_dockerfile_installs_the_release_tag_of_this_repository() -> None:
    repository = _load_yaml(REPO / "repository.yaml")
    step = _install_step()
    (url,) = re.findall(
        r'pip install "hsi-detector\[server,tflite,ultralytics\] @ git\+([^"]+)"', step
    )
    assert url == f"{repository['url']}@v${{BUILD_VERSION}}#subdirectory=detector"
    project = tomllib.loads((DETECTOR / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "hsi-detector"
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert (
        "ARG BUILD_VERSION\n" in dockerfile
    )  # no default: the Supervisor's value, or the build stops
    # Nothing but the install step brings the server into the image: no copy, no PYTHONPATH.
    copies = {line for line in dockerfile.splitlines() if line.startswith(("COPY", "ADD"))}
    assert copies == {f"COPY dist/ {DIST_IN_IMAGE}/", "COPY rootfs/ /"}
    assert "PYTHONPATH" not in dockerfile
    assert not list(ADDON.rglob("*.py"))
    assert (
        "hsi-detector --help" in dockerfile
    )  # the build fails if the installed server cannot start


@pytest.fixture
def install_step(tmp_path: Path) -> Callable[[dict[str, str]], tuple[int, str, list[str]]]:
    """Run the Dockerfile's install step with dist/ in tmp_path and pip/apt-get recorded."""
    bin_dir, dist, log = tmp_path / "bin", tmp_path / "hsi-dist", tmp_path / "tools.log"
    bin_dir.mkdir()
    dist.mkdir()
    for tool in ("pip", "apt-get"):
        (bin_dir / tool).write_text(FAKE_TOOL, encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    command = _install_step().replace(DIST_IN_IMAGE, str(dist))

    def run(env: dict[str, str]) -> tuple[int, str, list[str]]:
        log.unlink(missing_ok=True)
        done = subprocess.run(  # noqa: S603 - the Dockerfile's own step, with Docker's SHELL
            ["bash", "-o", "pipefail", "-c", command],  # noqa: S607 - bash from PATH, as in the image
            env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "TOOL_LOG": str(log)} | env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
        return done.returncode, done.stderr, calls

    return run


def test_install_step_installs_the_tag_of_the_build_version(
    install_step: Callable[[dict[str, str]], tuple[int, str, list[str]]], tmp_path: Path
) -> None:
    code, stderr, calls = install_step({"BUILD_VERSION": "1.2.3"})
    assert code == 0, stderr
    pip_calls = [c for c in calls if c.startswith("pip ")]
    assert pip_calls == [
        "pip install hsi-detector[server,tflite,ultralytics] @ "
        "git+https://github.com/home-security-intel/home_security_intel@v1.2.3#subdirectory=detector"
    ]
    assert any(c.startswith("apt-get install") and c.endswith(" git") for c in calls)
    assert any(c.startswith("apt-get purge") and "git" in c for c in calls)  # not left in the image
    assert not (tmp_path / "hsi-dist").exists()


def test_install_step_prefers_a_development_wheel(
    install_step: Callable[[dict[str, str]], tuple[int, str, list[str]]],
    wheel: Path,
    tmp_path: Path,
) -> None:
    dist = tmp_path / "hsi-dist"
    shutil.copy2(wheel, dist / wheel.name)
    (dist / ".gitignore").write_text("*\n")
    code, stderr, calls = install_step({"BUILD_VERSION": hsi_detector.__version__})
    assert code == 0, stderr
    # The development wheel with every extra, as the release tag; no git, no network.
    assert calls == [f"pip install {dist / wheel.name}[server,tflite,ultralytics]"]


def test_install_step_refuses_ambiguity_and_a_missing_version(
    install_step: Callable[[dict[str, str]], tuple[int, str, list[str]]], tmp_path: Path
) -> None:
    code, stderr, calls = install_step({})
    assert code != 0
    assert "BUILD_VERSION" in stderr
    assert calls == []
    for version in ("0.1.0", "0.2.0"):
        (tmp_path / "hsi-dist" / f"hsi_detector-{version}-py3-none-any.whl").write_bytes(b"")
    code, stderr, calls = install_step({"BUILD_VERSION": "0.2.0"})
    assert code != 0
    assert "more than one" in stderr
    assert calls == []


def test_development_wheels_are_never_committed(wheel: Path) -> None:
    ignored = subprocess.run(  # noqa: S603 - git's own ignore rules decide
        ["git", "check-ignore", "-q", str(ADDON / "dist" / wheel.name)],  # noqa: S607
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert ignored.returncode == 0
    kept = subprocess.run(  # noqa: S603 - the folder itself stays (the Dockerfile copies it)
        ["git", "check-ignore", "-q", str(ADDON / "dist" / ".gitignore")],  # noqa: S607
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert kept.returncode == 1


def _accepts(element: str, value: Any) -> bool:
    """The Supervisor's check of one value against one schema element (the types used here)."""
    match = RE_SCHEMA_ELEMENT.match(element)
    assert match is not None
    kind = element.rstrip("?").split("(", 1)[0]
    if kind == "list":
        return value in match["list"].split("|")
    if kind == "match":
        return re.fullmatch(match["match"], str(value)) is not None
    if kind == "bool":
        return isinstance(value, bool)
    if kind in {"int", "float"}:
        low, high = match["i_min" if kind == "int" else "f_min"], match[f"{kind[0]}_max"]
        number_ok = isinstance(value, int if kind == "int" else int | float)
        return (
            number_ok
            and not isinstance(value, bool)
            and (low is None or value >= float(low))
            and (high is None or value <= float(high))
        )
    if kind in {"str", "password"}:
        low = match["s_min" if kind == "str" else "p_min"]
        return isinstance(value, str) and (low is None or len(value) >= int(low))
    return False


def test_int8_calibration_reaches_the_server(
    config: dict[str, Any], run_addon: Callable[[dict[str, Any]], dict[str, Any]], tmp_path: Path
) -> None:
    frames = tmp_path / "frames"  # stands for /share/hsi_detector/frames
    frames.mkdir()
    recorded = run_addon(_user_options(config, int8_calibration=str(frames)))
    assert recorded["returncode"] == 0, recorded["stderr"]
    settings = parse_settings(recorded["argv"], env=recorded["env"])
    assert settings.int8_calibration == frames
    assert settings.runtime == "auto"  # the default: OpenVINO on a CPU, where int8 applies
    unset = run_addon(_user_options(config))
    assert "--int8-calibration" not in unset["argv"]
