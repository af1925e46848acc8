"""The detector side of the config flow, against real detectors: the server process and TFLite.

Detector servers are the real ``hsi_detector`` process (TFLite, fhempy's SSD MobileNet) over plain
HTTP, with an API key, and over TLS with its self-signed certificate, all on 127.0.0.1. Failures a
well-behaved server does not produce (HTML, 404, 503, an answer that never comes) are small aiohttp
servers on 127.0.0.1. Local models are fhempy's model file, copied into the models folder of the
test's Home Assistant configuration and loaded by the real TFLite runtime.

Stand-ins, each named where used: ``RemoteDetector.async_check`` raising (a bug no server can
cause), ``local_runtime_problem`` answering musl / missing (this machine has glibc and the
runtime), the known model's download URL pointed at 127.0.0.1, and a shorter client timeout for
the server that never answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
import dataclasses
import functools
import io
import logging
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import patch
import zipfile

from aiohttp import web
from homeassistant.config_entries import (
    SOURCE_HASSIO,
    SOURCE_USER,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.home_security_intel import config_flow
from custom_components.home_security_intel.config_flow import HsiConfigFlow
from custom_components.home_security_intel.const import (
    API_DEEPSTACK,
    API_HSI,
    API_RTDETR,
    CONF_API,
    CONF_API_KEY,
    CONF_DETECTOR,
    CONF_DETECTOR_KIND,
    CONF_ENGINE,
    CONF_ENTRY_TYPE,
    CONF_FINGERPRINT,
    CONF_MODEL,
    CONF_URL,
    DETECTOR_AUTO,
    DETECTOR_KIND_LOCAL,
    DETECTOR_KIND_SERVER,
    DETECTOR_NONE,
    DOMAIN,
    ENGINE_TFLITE,
    ENTRY_TYPE_DETECTOR,
    MODELS_DIR,
)
from custom_components.home_security_intel.detection.models import KNOWN_MODELS
from custom_components.home_security_intel.detection.remote import RemoteDetector
from tests.common import setup_entry
from tests.detection.support import (
    API_KEY,
    LOCAL_MODEL,
    DetectorServer,
    free_port,
    needs_detector_venv,
)
from tests.test_config_flow import STRINGS, checking_translations, select_options, suggested

WRONG_KEY = "Wr0ngWr0ngWr0ngWr0ngWr0ngWr0ng00"
OTHER_PIN = "ab" * 32  # a well-formed fingerprint of no certificate here
DEFAULT_TFLITE = "ssd_mobilenet_v1_coco_quant"

needs_local_model = pytest.mark.skipif(
    LOCAL_MODEL is None, reason="fhempy (its TFLite model) is not installed in .venv"
)


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """A configuration folder of this test's own: models are written under it."""
    config = tmp_path / "config"
    config.mkdir()
    return str(config)


@pytest.fixture(autouse=True)
def translated(hass: HomeAssistant) -> Generator[None]:
    """Every flow result a test sees is translated (the helper of test_config_flow)."""
    with checking_translations(hass):
        yield


# --------------------------------------------------------------------------------------- servers


# The real server processes (open_server, keyed_server, tls_server): tests/detection/servers.py.

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def web_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start small aiohttp servers on 127.0.0.1 answering every request with ``handler``."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


# ---------------------------------------------------------------------------------------- helpers


async def start_flow(hass: HomeAssistant, step: str) -> ConfigFlowResult:
    """Open the user flow's menu and choose ``step``."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return result


def server_input(
    url: str, api: str = API_HSI, key: str | None = None, fingerprint: str | None = None
) -> dict[str, Any]:
    """The detector form as the frontend sends it (empty optional fields left out)."""
    data: dict[str, Any] = {CONF_URL: url, CONF_API: api}
    if key is not None:
        data[CONF_API_KEY] = key
    if fingerprint is not None:
        data[CONF_FINGERPRINT] = fingerprint
    return data


async def submit_server(
    hass: HomeAssistant,
    url: str,
    api: str = API_HSI,
    key: str | None = None,
    fingerprint: str | None = None,
) -> ConfigFlowResult:
    """Fill in the detector form once."""
    result = await start_flow(hass, "detector")
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input(url, api, key, fingerprint)
    )


def server_data(
    url: str, api: str = API_HSI, key: str | None = None, fingerprint: str | None = None
) -> dict[str, Any]:
    """A detector server entry's data."""
    return {
        CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR,
        CONF_DETECTOR_KIND: DETECTOR_KIND_SERVER,
        CONF_URL: url,
        CONF_API: api,
        CONF_API_KEY: key,
        CONF_FINGERPRINT: fingerprint,
    }


def server_entry(
    url: str,
    api: str = API_HSI,
    key: str | None = None,
    fingerprint: str | None = None,
    title: str = "Det",
    **kwargs: Any,
) -> MockConfigEntry:
    """A detector server entry, not yet added."""
    kwargs.setdefault("unique_id", url)
    return MockConfigEntry(
        domain=DOMAIN, title=title, data=server_data(url, api, key, fingerprint), **kwargs
    )


def local_data(model: str) -> dict[str, Any]:
    """A local TFLite detector entry's data."""
    return {
        CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR,
        CONF_DETECTOR_KIND: DETECTOR_KIND_LOCAL,
        CONF_ENGINE: ENGINE_TFLITE,
        CONF_MODEL: model,
    }


def models_dir(hass: HomeAssistant) -> Path:
    """The models folder of the test's Home Assistant configuration."""
    return Path(hass.config.path(MODELS_DIR))


def install_model(hass: HomeAssistant, relative: str) -> Path:
    """Copy fhempy's model (and its labelmap.txt beside it) into the models folder."""
    assert LOCAL_MODEL is not None
    target = models_dir(hass) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LOCAL_MODEL, target)
    shutil.copyfile(LOCAL_MODEL.with_name("labelmap.txt"), target.with_name("labelmap.txt"))
    return target


def model_zip(model: bytes | None = None) -> bytes:
    """A model archive shaped like TensorFlow's: detect.tflite and labelmap.txt."""
    assert LOCAL_MODEL is not None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("detect.tflite", model if model is not None else LOCAL_MODEL.read_bytes())
        archive.writestr("labelmap.txt", LOCAL_MODEL.with_name("labelmap.txt").read_text())
    return buffer.getvalue()


def known_at(url: str) -> Any:
    """Point the default TFLite model's download at ``url`` (127.0.0.1), not Google's storage."""
    known = KNOWN_MODELS[DEFAULT_TFLITE]
    return patch.dict(KNOWN_MODELS, {DEFAULT_TFLITE: dataclasses.replace(known, url=url)})


def entry_of(result: ConfigFlowResult) -> Any:
    """The config entry a CREATE_ENTRY result made."""
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    return result["result"]


# ----------------------------------------------------------------------------- detector servers


@needs_detector_venv
@pytest.mark.parametrize("api", [API_HSI, API_DEEPSTACK, API_RTDETR])
async def test_server_of_each_api_is_added(
    hass: HomeAssistant, open_server: DetectorServer, api: str
) -> None:
    """Our server speaks all three APIs; each is checked for real and stored normalised."""
    result = await start_flow(hass, "detector")
    assert suggested(result, CONF_URL) == "http://127.0.0.1:8765"
    assert result["errors"] == {}
    # A pasted URL with upper case and a trailing slash is stored as scheme://host:port.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input(f"HTTP://127.0.0.1:{open_server.port}/", api)
    )
    entry = entry_of(result)
    assert result["data"] == server_data(open_server.url, api)
    assert entry.unique_id == open_server.url
    # Titled by what serves and where; the model is the device's model.
    names = {API_HSI: "HSI Detector", API_DEEPSTACK: "DeepStack", API_RTDETR: "HSI /detect"}
    assert result["title"] == f"{names[api]} (127.0.0.1)"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


@needs_detector_venv
async def test_keyed_server_needs_its_key(
    hass: HomeAssistant, keyed_server: DetectorServer
) -> None:
    """No key or a wrong one: invalid_key, the key never shown again; the right one is stored."""
    result = await start_flow(hass, "detector")
    for key in (None, WRONG_KEY):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], server_input(keyed_server.url, key=key)
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "invalid_key"}
        assert suggested(result, CONF_URL) == keyed_server.url
        assert suggested(result, CONF_API_KEY) is None  # the key does not go back to the browser
    # An API client may send empty optional fields: "" is no key, not a key.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**server_input(keyed_server.url, key=API_KEY), CONF_FINGERPRINT: ""}
    )
    entry_of(result)
    assert result["data"] == server_data(keyed_server.url, key=API_KEY)
    await hass.async_block_till_done()


@needs_detector_venv
async def test_tls_server_with_its_pinned_fingerprint(
    hass: HomeAssistant, tls_server: DetectorServer
) -> None:
    """Self-signed: refused unpinned and with another pin; the printed pin is stored normalised."""
    result = await start_flow(hass, "detector")
    for pin in (None, OTHER_PIN):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], server_input(tls_server.url, key=API_KEY, fingerprint=pin)
        )
        assert result["errors"] == {"base": "wrong_fingerprint"}
    assert suggested(result, CONF_FINGERPRINT) == OTHER_PIN  # the user's own text, to correct
    printed = ":".join(
        tls_server.fingerprint[i : i + 2].upper() for i in range(0, 64, 2)
    )  # as the server prints it: AB:CD:...
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        server_input(tls_server.url, key=API_KEY, fingerprint=f"SHA-256 fingerprint: {printed}"),
    )
    entry_of(result)
    assert result["data"] == server_data(
        tls_server.url, key=API_KEY, fingerprint=tls_server.fingerprint
    )
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://127.0.0.1:8765", "invalid_url"),
        ("http://user:pw@127.0.0.1:8765", "invalid_url"),
        ("http://127.0.0.1:8765/v1/detect", "invalid_url"),
        ("not a url", "invalid_url"),
        ("http://8.8.8.8:8765", "plaintext_public"),
        ("http://detector.example.com", "plaintext_public"),
    ],
)
async def test_url_policy_errors(hass: HomeAssistant, url: str, error: str) -> None:
    """Refused by policy before any connection (8.8.8.8 is never contacted): on the URL field."""
    result = await submit_server(hass, url)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: error}
    assert suggested(result, CONF_URL) == url
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_malformed_fingerprint(hass: HomeAssistant) -> None:
    """A pin that is no SHA-256 fingerprint is named on its field, before any connection."""
    result = await submit_server(hass, "https://127.0.0.1:1", fingerprint="12:34:zz")
    assert result["errors"] == {CONF_FINGERPRINT: "invalid_fingerprint"}
    assert suggested(result, CONF_FINGERPRINT) == "12:34:zz"


async def test_nothing_listening(hass: HomeAssistant) -> None:
    """A free port: detector_cannot_connect (the camera's cannot_connect names the camera)."""
    result = await submit_server(hass, f"http://127.0.0.1:{free_port()}")
    assert result["errors"] == {"base": "detector_cannot_connect"}


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>router login</body></html>", content_type="text/html")


async def _not_found(request: web.Request) -> web.Response:
    return web.Response(status=404, text="not found")


async def _busy(request: web.Request) -> web.Response:
    return web.Response(status=503, headers={"Retry-After": "5"}, text="busy")


@pytest.mark.parametrize(
    ("handler", "error"),
    [(_html, "not_a_detector"), (_not_found, "not_a_detector"), (_busy, "detector_busy")],
)
async def test_something_else_answers(
    hass: HomeAssistant,
    web_server: Callable[[Handler], Awaitable[str]],
    handler: Handler,
    error: str,
) -> None:
    """A web page, a 404 and an overloaded server are told apart; nothing is saved."""
    url = await web_server(handler)
    result = await submit_server(hass, url)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_server_that_never_answers(
    hass: HomeAssistant, web_server: Callable[[Handler], Awaitable[str]]
) -> None:
    """An answer that does not come in time is detector_timeout.

    The handler waits until the test ends; the flow's real RemoteDetector gets a 0.2 s timeout
    instead of its 10 s so the test does not sit out the default (the one timing stand-in).
    """
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    url = await web_server(hang)
    quick = functools.partial(RemoteDetector, timeout=0.2)
    try:
        with patch.object(config_flow, "RemoteDetector", quick):
            result = await submit_server(hass, url)
    finally:
        release.set()
    assert result["errors"] == {"base": "detector_timeout"}


async def test_unexpected_error_is_unknown(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the client gives "unknown" and a logged trace, never a dead form (a stand-in)."""
    with patch.object(RemoteDetector, "async_check", side_effect=RuntimeError("client bug")):
        result = await submit_server(hass, "http://127.0.0.1:1")
    assert result["errors"] == {"base": "unknown"}
    assert any(
        r.levelno == logging.ERROR and "Unexpected error while checking the detector" in r.message
        for r in caplog.records
    )


async def test_configured_server_aborts_without_asking_it(hass: HomeAssistant) -> None:
    """The same URL (however written) is already configured: abort, with no request sent.

    Nothing listens at the stored URL, so a request would fail with cannot_connect instead.
    """
    url = f"http://127.0.0.1:{free_port()}"
    server_entry(url).add_to_hass(hass)
    result = await submit_server(hass, url.upper() + "/")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_addon_added_by_url_is_configured_already(hass: HomeAssistant) -> None:
    """An entry from discovery is keyed by its add-on id, yet its URL counts as taken too."""
    url = f"https://127.0.0.1:{free_port()}"
    server_entry(url, unique_id="1234", source=SOURCE_HASSIO).add_to_hass(hass)
    result = await submit_server(hass, url)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


def test_detectors_have_no_options(config_entry: MockConfigEntry) -> None:
    """A detector is changed with reconfigure; only cameras have an options flow."""
    detector = server_entry("http://127.0.0.1:8765")
    assert HsiConfigFlow.async_supports_options_flow(detector) is False
    assert HsiConfigFlow.async_supports_options_flow(config_entry) is True


# ---------------------------------------------------------------------------------- local models


async def submit_local(hass: HomeAssistant, model: str | None) -> ConfigFlowResult:
    """Fill in the local model form once (None: the field left empty)."""
    result = await start_flow(hass, "local_model")
    assert result["description_placeholders"] == {"models_dir": str(models_dir(hass))}
    data: dict[str, Any] = {CONF_ENGINE: ENGINE_TFLITE}
    if model is not None:
        data[CONF_MODEL] = model
    return await hass.config_entries.flow.async_configure(result["flow_id"], data)


@needs_local_model
@pytest.mark.parametrize("relative", ["fhempy.tflite", "mine/detect.tflite"])
async def test_local_model_file_in_the_models_folder(hass: HomeAssistant, relative: str) -> None:
    """A model file named by its place in the models folder is loaded, tried, and added."""
    await hass.async_add_executor_job(install_model, hass, relative)
    result = await submit_local(hass, f" {relative} ")
    entry = entry_of(result)
    assert result["title"] == f"Local TFLite ({relative})"
    assert result["data"] == local_data(relative)
    assert entry.unique_id == f"local_tflite_{relative}"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


@needs_local_model
async def test_local_model_by_absolute_path(hass: HomeAssistant, tmp_path: Path) -> None:
    """A full path outside the models folder works too."""
    assert LOCAL_MODEL is not None
    result = await submit_local(hass, str(LOCAL_MODEL))
    entry = entry_of(result)
    assert result["data"] == local_data(str(LOCAL_MODEL))
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


@needs_local_model
async def test_default_model_is_downloaded_with_progress(
    hass: HomeAssistant, web_server: Callable[[Handler], Awaitable[str]]
) -> None:
    """The default model is missing: it is downloaded (progress shown), checked, then added.

    The known model's URL is pointed at a server on 127.0.0.1 serving an archive shaped like
    TensorFlow's (detect.tflite + labelmap.txt); the answer is held until the test has seen the
    progress step.
    """
    archive = model_zip()
    release = asyncio.Event()
    requests: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        requests.append(request.path)
        await release.wait()
        return web.Response(body=archive, content_type="application/zip")

    url = await web_server(serve)
    progress: list[float] = []
    hass.bus.async_listen(
        "data_entry_flow_progress_update", lambda event: progress.append(event.data["progress"])
    )
    with known_at(f"{url}/models/coco_ssd.zip"):
        result = await submit_local(hass, None)  # empty: the default model
        assert result["type"] is FlowResultType.SHOW_PROGRESS
        assert result["step_id"] == "local_download"
        assert result["progress_action"] == "download"
        assert result["description_placeholders"] == {"model": DEFAULT_TFLITE}
        flow_id = result["flow_id"]
        # Asking again while it runs shows the same progress (one download, not two).
        result = await hass.config_entries.flow.async_configure(flow_id)
        assert result["type"] is FlowResultType.SHOW_PROGRESS
        release.set()
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(flow_id)
    entry = entry_of(result)
    assert requests == ["/models/coco_ssd.zip"]
    assert progress
    assert progress[-1] == 1.0
    assert result["title"] == f"Local TFLite ({DEFAULT_TFLITE})"
    assert result["data"] == local_data(DEFAULT_TFLITE)
    folder = models_dir(hass) / DEFAULT_TFLITE
    assert LOCAL_MODEL is not None
    assert (folder / "detect.tflite").read_bytes() == LOCAL_MODEL.read_bytes()
    assert (folder / "labelmap.txt").is_file()
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


@needs_local_model
async def test_failed_download_returns_to_the_form(
    hass: HomeAssistant, web_server: Callable[[Handler], Awaitable[str]]
) -> None:
    """A 404 for the model: back on the form with download_failed; the next try can succeed."""
    archive = model_zip()
    answers = [web.Response(status=404, text="gone")]

    async def serve(request: web.Request) -> web.Response:
        return answers.pop(0) if answers else web.Response(body=archive)

    url = await web_server(serve)
    with known_at(f"{url}/coco_ssd.zip"):
        result = await submit_local(hass, DEFAULT_TFLITE)
        assert result["type"] is FlowResultType.SHOW_PROGRESS
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(result["flow_id"])
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "local_model"
        assert result["errors"] == {"base": "download_failed"}
        assert suggested(result, CONF_MODEL) == DEFAULT_TFLITE
        assert not (models_dir(hass) / DEFAULT_TFLITE).exists()

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_ENGINE: ENGINE_TFLITE, CONF_MODEL: DEFAULT_TFLITE}
        )
        assert result["type"] is FlowResultType.SHOW_PROGRESS
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(result["flow_id"])
    entry = entry_of(result)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


@needs_local_model
async def test_downloaded_model_that_does_not_load_is_removed(
    hass: HomeAssistant, web_server: Callable[[Handler], Awaitable[str]]
) -> None:
    """An archive whose model is garbage: model_unusable, and the broken download is removed."""
    archive = model_zip(b"this is not a flatbuffer" * 100)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=archive)

    url = await web_server(serve)
    with known_at(f"{url}/coco_ssd.zip"):
        result = await submit_local(hass, DEFAULT_TFLITE)
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["step_id"] == "local_model"
    assert result["errors"] == {"base": "model_unusable"}
    assert not (models_dir(hass) / DEFAULT_TFLITE).exists()
    assert hass.config_entries.async_entries(DOMAIN) == []


@needs_local_model
async def test_unusable_model_file_is_kept(hass: HomeAssistant) -> None:
    """The user's own garbage .tflite: model_unusable, and the file is theirs, so it stays."""
    garbage = models_dir(hass) / "broken.tflite"
    await hass.async_add_executor_job(lambda: garbage.parent.mkdir(parents=True, exist_ok=True))
    await hass.async_add_executor_job(garbage.write_bytes, b"\x00garbage" * 64)
    result = await submit_local(hass, "broken.tflite")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local_model"
    assert result["errors"] == {"base": "model_unusable"}
    assert suggested(result, CONF_MODEL) == "broken.tflite"
    assert garbage.is_file()
    assert hass.config_entries.async_entries(DOMAIN) == []


@pytest.mark.parametrize("model", ["nothing.tflite", "../outside.tflite", "yolo11n"])
async def test_model_not_found(hass: HomeAssistant, model: str) -> None:
    """No such file (or a name escaping the folder, or another engine's model): on the field."""
    result = await submit_local(hass, model)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MODEL: "model_not_found"}
    assert suggested(result, CONF_MODEL) == model


@pytest.mark.parametrize(
    ("problem", "error"), [("musl", "local_unsupported"), ("missing", "local_missing")]
)
async def test_runtime_that_cannot_run_here(hass: HomeAssistant, problem: str, error: str) -> None:
    """musl (Home Assistant OS) or no runtime: one clear error, nothing loaded or downloaded.

    This machine has glibc and ai-edge-litert, so ``local_runtime_problem`` is the stand-in.
    """
    with patch.object(config_flow, "local_runtime_problem", return_value=problem) as check:
        result = await submit_local(hass, None)
    check.assert_called_once_with(ENGINE_TFLITE)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert "add-on" in STRINGS["config"]["error"][error]
    assert not models_dir(hass).exists()


async def test_local_model_configured_already(hass: HomeAssistant) -> None:
    """The same engine and model again: already configured, before anything is loaded."""
    MockConfigEntry(
        domain=DOMAIN, unique_id=f"local_tflite_{DEFAULT_TFLITE}", data=local_data(DEFAULT_TFLITE)
    ).add_to_hass(hass)
    result = await submit_local(hass, None)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# -------------------------------------------------------------------------------------- add-on


def addon_info(server: DetectorServer, key: str = API_KEY) -> HassioServiceInfo:
    """What the add-on's run.sh announces through the Supervisor, for a server on 127.0.0.1."""
    return HassioServiceInfo(
        config={
            "host": "127.0.0.1",
            "port": server.port,
            CONF_API_KEY: key,
            "tls": True,
            CONF_FINGERPRINT: server.fingerprint,
        },
        name="HSI Detector",
        slug="hsi_detector",
        uuid="1234",
    )


async def discover(hass: HomeAssistant, info: HassioServiceInfo) -> ConfigFlowResult:
    """The Supervisor hands the integration a discovery."""
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )


@needs_detector_venv
async def test_addon_is_offered_and_added(hass: HomeAssistant, tls_server: DetectorServer) -> None:
    """One click: the announced address, key and pin are checked and stored; nothing typed."""
    result = await discover(hass, addon_info(tls_server))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {"addon": "HSI Detector"}
    assert result["data_schema"] is None  # nothing to type
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["title_placeholders"] == {"name": "HSI Detector"}
    assert STRINGS["config"]["flow_title"] == "{name}"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    entry = entry_of(result)
    assert result["title"] == "HSI Detector"
    assert entry.unique_id == "1234"
    assert result["data"] == server_data(
        tls_server.url, key=API_KEY, fingerprint=tls_server.fingerprint
    )
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    # Restarted with a new key: the entry follows without asking, and is not offered again.
    result = await discover(hass, addon_info(tls_server, key=WRONG_KEY))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_API_KEY] == WRONG_KEY
    assert entry.data[CONF_URL] == tls_server.url
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


@needs_detector_venv
async def test_addon_whose_key_is_refused(hass: HomeAssistant, tls_server: DetectorServer) -> None:
    """The announced key does not work: invalid_key on the confirm form, nothing saved."""
    result = await discover(hass, addon_info(tls_server, key=WRONG_KEY))
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["errors"] == {"base": "invalid_key"}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_addon_added_by_hand_is_not_offered_again(hass: HomeAssistant) -> None:
    """The user added the add-on's URL before the announcement came: already configured."""
    port = free_port()
    server_entry(f"https://127.0.0.1:{port}").add_to_hass(hass)
    info = HassioServiceInfo(
        config={"host": "127.0.0.1", "port": port, "tls": True},
        name="HSI Detector",
        slug="hsi_detector",
        uuid="1234",
    )
    result = await discover(hass, info)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# -------------------------------------------------------------------------- reauth, reconfigure


@needs_detector_venv
async def test_detector_reauth(hass: HomeAssistant, keyed_server: DetectorServer) -> None:
    """The server refused the stored key: a wrong new one is refused, the right one stored."""
    entry = server_entry(keyed_server.url, key=WRONG_KEY)
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_detector"
    assert result["description_placeholders"] == {"name": "Det", "url": keyed_server.url}
    marker = next(iter(probatio_markers(result)))
    assert isinstance(marker, probatio.Optional)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "Still-Wr0ng-Still-Wr0ng-Still-Wr0"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_key"}
    assert entry.data[CONF_API_KEY] == WRONG_KEY

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data == server_data(keyed_server.url, key=API_KEY)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


def probatio_markers(result: ConfigFlowResult) -> list[Any]:
    """The markers of a form's schema."""
    schema = result["data_schema"]
    assert schema is not None
    return list(schema.schema)


@needs_detector_venv
async def test_reconfigure_detector(
    hass: HomeAssistant, open_server: DetectorServer, keyed_server: DetectorServer
) -> None:
    """Move to another server and API; an error first; an empty key keeps the stored one."""
    entry = server_entry(open_server.url)
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_detector"
    assert suggested(result, CONF_URL) == open_server.url
    assert result["description_placeholders"] == {"name": "Det"}

    dead = f"http://127.0.0.1:{free_port()}"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input(dead, API_DEEPSTACK)
    )
    assert result["errors"] == {"base": "detector_cannot_connect"}
    assert suggested(result, CONF_URL) == dead
    assert entry.data == server_data(open_server.url)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input(keyed_server.url, API_DEEPSTACK, key=API_KEY)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == server_data(keyed_server.url, API_DEEPSTACK, key=API_KEY)
    assert entry.unique_id == keyed_server.url
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    # Only the API changes: the key is left empty and the stored one is used (and kept).
    result = await entry.start_reconfigure_flow(hass)
    assert suggested(result, CONF_API_KEY) is None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input(keyed_server.url, API_RTDETR, key="")
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == server_data(keyed_server.url, API_RTDETR, key=API_KEY)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


@needs_detector_venv
async def test_reconfigure_to_another_server_does_not_send_the_stored_key(
    hass: HomeAssistant, keyed_server: DetectorServer
) -> None:
    """An empty key keeps the stored one only for the same server: moving the URL elsewhere with
    the key left empty sends no key there (the keyed server refuses), and a malformed URL too."""
    entry = server_entry(f"http://127.0.0.1:{free_port()}", key=API_KEY)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input(keyed_server.url, key="")
    )
    assert result["errors"] == {"base": "invalid_key"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input("ftp://127.0.0.1", key="")
    )
    assert result["errors"] == {CONF_URL: "invalid_url"}
    assert entry.data[CONF_API_KEY] == API_KEY


@needs_detector_venv
async def test_reconfigure_detector_to_a_taken_url(
    hass: HomeAssistant, open_server: DetectorServer
) -> None:
    """Another entry has that server already: abort, this entry is unchanged."""
    server_entry(open_server.url, title="First").add_to_hass(hass)
    url = f"http://127.0.0.1:{free_port()}"
    entry = server_entry(url, title="Second")
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], server_input(open_server.url)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == server_data(url)


@needs_detector_venv
async def test_reconfigure_addon_keeps_its_discovery_id(
    hass: HomeAssistant, tls_server: DetectorServer
) -> None:
    """An entry from discovery stays keyed by the add-on, so its next announcement finds it."""
    entry = server_entry(
        f"https://127.0.0.1:{free_port()}", key=API_KEY, unique_id="1234", source=SOURCE_HASSIO
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        server_input(tls_server.url, key=API_KEY, fingerprint=tls_server.fingerprint),
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == "1234"
    assert entry.data == server_data(
        tls_server.url, key=API_KEY, fingerprint=tls_server.fingerprint
    )
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


@needs_local_model
async def test_reconfigure_local(hass: HomeAssistant) -> None:
    """Another model file: a missing one is refused, a working one stored (and re-keyed)."""
    for name in ("first.tflite", "second.tflite"):
        await hass.async_add_executor_job(install_model, hass, name)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Local",
        unique_id="local_tflite_first.tflite",
        data=local_data("first.tflite"),
    )
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_local"
    assert suggested(result, CONF_MODEL) == "first.tflite"
    assert result["description_placeholders"] == {
        "name": "Local",
        "models_dir": str(models_dir(hass)),
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ENGINE: ENGINE_TFLITE, CONF_MODEL: "missing.tflite"}
    )
    assert result["errors"] == {"base": "model_not_found"}
    assert suggested(result, CONF_MODEL) == "missing.tflite"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ENGINE: ENGINE_TFLITE, CONF_MODEL: "second.tflite"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == local_data("second.tflite")
    assert entry.unique_id == "local_tflite_second.tflite"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_local_to_a_model_another_entry_has(hass: HomeAssistant) -> None:
    """Two entries for one model would share a unique id: abort, nothing is loaded or changed."""
    MockConfigEntry(
        domain=DOMAIN, unique_id="local_tflite_taken.tflite", data=local_data("taken.tflite")
    ).add_to_hass(hass)
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="local_tflite_mine.tflite", data=local_data("mine.tflite")
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ENGINE: ENGINE_TFLITE, CONF_MODEL: "taken.tflite"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == local_data("mine.tflite")
    assert entry.unique_id == "local_tflite_mine.tflite"


# ---------------------------------------------------------------------- a camera picks its detector


@needs_detector_venv
async def test_camera_options_offer_the_detectors(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    open_server: DetectorServer,
    keyed_server: DetectorServer,
) -> None:
    """Auto, none, and every detector entry by title; the one chosen is stored."""
    zulu = server_entry(open_server.url, title="Zulu detector")
    alpha = server_entry(keyed_server.url, key=API_KEY, title="alpha detector")
    for entry in (zulu, alpha):
        await setup_entry(hass, entry)
        assert entry.state is ConfigEntryState.LOADED
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    assert select_options(result, CONF_DETECTOR) == [
        {"value": DETECTOR_AUTO, "label": DETECTOR_AUTO},
        {"value": DETECTOR_NONE, "label": DETECTOR_NONE},
        {"value": alpha.entry_id, "label": "alpha detector"},
        {"value": zulu.entry_id, "label": "Zulu detector"},
    ]
    assert set(STRINGS["selector"]["detector"]["options"]) == {DETECTOR_AUTO, DETECTOR_NONE}
    sent = {
        CONF_DETECTOR: zulu.entry_id,
        "frame_source": "snapshot",
        "profiles": ["profile_main"],
        config_flow.SECTION_DETECTION: {
            "fps": 1.0,
            "groups": ["person"],
            "min_score": 0.5,
            "confirm_threshold": 0.7,
            "min_area": 0.0,
            "max_area": 1.0,
            "off_delay": 5.0,
        },
        config_flow.SECTION_ZONES: {},
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], sent)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_integration.options[CONF_DETECTOR] == zulu.entry_id
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    assert suggested(result, CONF_DETECTOR) == zulu.entry_id
    for entry in (setup_integration, zulu, alpha):
        assert await hass.config_entries.async_unload(entry.entry_id)
