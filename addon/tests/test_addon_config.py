"""Consistency of the HSI Detector add-on with the server it packages.

config.yaml (options + schema), translations/en.yaml and run.sh must agree with each other and with
`python -m hsi_detector`: every option has a schema entry the Supervisor accepts and a translation,
run.sh turns every option into a flag the real server parses to the intended setting, the version
matches `hsi_detector.__version__`, and the add-on's copy of the server is the current one.

Run with the detector's environment:  .venv-detector/bin/python -m pytest addon/tests
"""

from __future__ import annotations

from collections.abc import Callable
import importlib.util
import json
import os
from pathlib import Path
import re
import secrets
import stat
import subprocess
import sys
from types import ModuleType
from typing import Any

from PIL import Image
import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the detector venv

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "addon" / "hsi_detector"
RUN_SH = ADDON / "rootfs" / "run.sh"
sys.path.insert(0, str(REPO / "detector"))

import hsi_detector  # noqa: E402 - importable only once detector/ is on the path
from hsi_detector.config import Settings, parse_settings  # noqa: E402
from hsi_detector.keys import digest  # noqa: E402

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
"""

# Stands in for the image's python3 so the test sees exactly what run.sh would exec.
FAKE_PYTHON = """#!/bin/sh
exec "$SHIM_PYTHON" -c 'import json, os, sys
json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(),
           "env": {k: v for k, v in os.environ.items() if k.startswith("HSI_")}},
          open(os.environ["SHIM_RECORD"], "w"))' "$@"
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
    fake = bin_dir / "python3"
    fake.write_text(FAKE_PYTHON, encoding="utf-8")
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
    assert recorded["argv"][:2] == ["-m", "hsi_detector"]
    return parse_settings(recorded["argv"][2:], recorded["env"])


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
    assert optional == {"labels", "client_ca"}
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
    for key in (
        "engine",
        "model",
        "device",
        "half",
        "imgsz",
        "confidence",
        "max_batch_size",
        "max_batch_wait_ms",
        "max_queue",
        "decode_workers",
        "request_timeout",
        "max_body_mb",
        "max_pixels",
        "rate_limit",
        "auth_fail_limit",
        "log_level",
        "warmup",
    ):
        assert getattr(settings, key) == options[key], key


def test_every_other_value_reaches_the_server(
    config: dict[str, Any], run_addon: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    changes: dict[str, Any] = {
        "engine": "tflite",
        "model": "/share/hsi_detector/detect.tflite",
        "labels": "/share/hsi_detector/labels.txt",
        "device": "cuda:1",
        "half": "off",
        "imgsz": 320,
        "confidence": 0.4,
        "classes": ["person", "car"],
        "max_batch_size": 8,
        "max_batch_wait_ms": 2.5,
        "max_queue": 64,
        "decode_workers": 3,
        "request_timeout": 5.5,
        "tls": "provided",
        "certfile": "my-chain.pem",
        "keyfile": "/share/keys/my-key.pem",
        "client_ca": "clients-ca.pem",
        "max_body_mb": 4,
        "max_pixels": 1000000,
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
    for key, value in changes.items():
        if key not in {"tls", "certfile", "keyfile", "client_ca", "labels", "classes"}:
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
        {"warmup": False},
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
    assert "argv" not in recorded  # python3 was never started
    assert "api_key" in recorded["stderr"]


def test_build_bases_cover_every_arch(config: dict[str, Any]) -> None:
    build = _load_yaml(ADDON / "build.yaml")
    assert set(build["build_from"]) == set(config["arch"])
    dockerfile = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM ${BUILD_FROM}" in dockerfile
    assert f"ARG BASHIO_VERSION={build['args']['BASHIO_VERSION']}" in dockerfile
    assert "pip install -r /opt/hsi_detector/requirements.txt" in dockerfile
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


# --- the add-on's copy of the server (addon/sync_detector.py) -------------------------------------


@pytest.fixture(scope="module")
def sync_module() -> ModuleType:
    """addon/sync_detector.py, a script rather than a package module."""
    path = REPO / "addon" / "sync_detector.py"
    spec = importlib.util.spec_from_file_location("sync_detector", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_addon_ships_the_current_server(sync_module: ModuleType) -> None:
    problems = sync_module.differences()
    assert problems == [], "run `python addon/sync_detector.py`:\n" + "\n".join(problems)
    assert sync_module.main(["--check"]) == 0


def test_sync_copies_updates_and_prunes(sync_module: ModuleType, tmp_path: Path) -> None:
    source, target = tmp_path / "detector", tmp_path / "copy"
    (source / "hsi_detector" / "engines").mkdir(parents=True)
    (source / "hsi_detector" / "__init__.py").write_text("A\n")
    (source / "hsi_detector" / "engines" / "yolo.py").write_text("B\n")
    (source / "hsi_detector" / "__pycache__").mkdir()
    (source / "hsi_detector" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (source / "requirements.txt").write_text("numpy\n")
    (source / "tests").mkdir()
    (source / "tests" / "test_x.py").write_text("")

    assert sync_module.differences(source, target) == [
        "missing in add-on: hsi_detector/__init__.py",
        "missing in add-on: hsi_detector/engines/yolo.py",
        "missing in add-on: requirements.txt",
    ]
    sync_module.sync(source, target)
    assert sync_module.differences(source, target) == []
    assert not (target / "tests").exists()
    assert not (target / "hsi_detector" / "__pycache__").exists()

    (source / "hsi_detector" / "__init__.py").write_text("A2\n")
    (source / "hsi_detector" / "engines" / "yolo.py").unlink()
    assert sync_module.differences(source, target) == [
        "stale in add-on: hsi_detector/engines/yolo.py",
        "differs: hsi_detector/__init__.py",
    ]
    sync_module.sync(source, target)
    assert sync_module.differences(source, target) == []
    assert not (target / "hsi_detector" / "engines").exists()  # emptied folders go too


def test_sync_command_line(
    sync_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = tmp_path / "detector", tmp_path / "copy"
    monkeypatch.setattr(sync_module, "SOURCE", source)
    monkeypatch.setattr(sync_module, "TARGET", target)
    assert sync_module.main([]) == 2  # no package to copy
    (source / "hsi_detector").mkdir(parents=True)
    (source / "hsi_detector" / "__init__.py").write_text("A\n")
    assert sync_module.main(["--check"]) == 1
    assert sync_module.main([]) == 0
    assert sync_module.main(["--check"]) == 0


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
