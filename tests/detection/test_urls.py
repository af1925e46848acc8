"""The detector URL policy and fingerprint format."""

# ruff: noqa: E501 - tables of cases read best one case per line

from __future__ import annotations

import pytest

from custom_components.home_security_intel.detection.urls import (
    DetectorUrl,
    InvalidFingerprintError,
    InvalidUrlError,
    PlaintextPublicError,
    check_detector_url,
    normalize_fingerprint,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://detector.example.com", DetectorUrl("https://detector.example.com:443", "https", "detector.example.com", 443, False)),
        (" HTTPS://Detector.Example.COM:8765/ ", DetectorUrl("https://detector.example.com:8765", "https", "detector.example.com", 8765, False)),
        ("http://127.0.0.1:8765", DetectorUrl("http://127.0.0.1:8765", "http", "127.0.0.1", 8765, True)),
        ("http://192.168.1.20", DetectorUrl("http://192.168.1.20:80", "http", "192.168.1.20", 80, True)),
        ("http://[::1]:8765", DetectorUrl("http://[::1]:8765", "http", "::1", 8765, True)),
        ("http://[fd12:3456::1]:8765", DetectorUrl("http://[fd12:3456::1]:8765", "http", "fd12:3456::1", 8765, True)),
        ("http://localhost:8765", DetectorUrl("http://localhost:8765", "http", "localhost", 8765, True)),
        ("http://a0d7b954-hsi-detector:8765", DetectorUrl("http://a0d7b954-hsi-detector:8765", "http", "a0d7b954-hsi-detector", 8765, True)),
        ("https://8.8.8.8", DetectorUrl("https://8.8.8.8:443", "https", "8.8.8.8", 443, False)),
    ],
)  # fmt: skip
def test_accepted_urls_are_normalised(url: str, expected: DetectorUrl) -> None:
    assert check_detector_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5",
        "http://172.16.4.4",
        "http://169.254.1.1",
        "http://[fe80::1]",
        "http://[::ffff:192.168.0.9]",
        "http://nas.local",
        "http://detector.lan",
        "http://box.home.arpa",
        "http://gpu.internal",
        "http://detector.local.",
    ],
)
def test_plain_http_inside_the_home_network_is_allowed(url: str) -> None:
    assert check_detector_url(url).plaintext


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8",
        "http://[2001:4860::8888]",
        "http://[::ffff:8.8.8.8]",
        "http://100.64.0.1",
        "http://detector.example.com",
        "http://localhost.evil.com",
    ],
)
def test_plain_http_beyond_the_home_network_is_refused(url: str) -> None:
    with pytest.raises(PlaintextPublicError) as err:
        check_detector_url(url)
    assert err.value.reason == "plaintext_public"
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://10.0.0.1",
        "10.0.0.1:8765",
        "https://user:pass@detector.example.com",
        "https://key@detector.example.com",
        "https://detector.example.com/v1/detect",
        "https://detector.example.com/?api_key=x",
        "https://detector.example.com/#x",
        "https://detector.example.com:99999",
        "https://detector.example.com:0",
        "https://",
        "https://bad_host!",
        "https://-dash.example.com",
        "http://0.0.0.0:8765",
        "http://224.0.0.1",
        "https://[::1",
    ],
)
def test_invalid_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrlError) as err:
        check_detector_url(url)
    assert err.value.reason == "invalid_url"


def test_loopback() -> None:
    assert check_detector_url("http://127.0.0.2:1").loopback
    assert check_detector_url("http://localhost:1").loopback
    assert not check_detector_url("http://192.168.1.2:1").loopback
    assert not check_detector_url("http://nas.local:1").loopback


FINGERPRINT = "ab" * 32


@pytest.mark.parametrize(
    "text",
    [
        FINGERPRINT,
        FINGERPRINT.upper(),
        ":".join(["AB"] * 32),
        " ".join(["ab"] * 32),
        "TLS certificate SHA-256 fingerprint: " + ":".join(["AB"] * 32),
        "sha256 Fingerprint=" + ":".join(["AB"] * 32),
        "SHA256:" + FINGERPRINT,
    ],
)
def test_fingerprints_as_printed_are_accepted(text: str) -> None:
    assert normalize_fingerprint(text) == FINGERPRINT


@pytest.mark.parametrize("text", ["", "ab" * 31, "ab" * 33, "zz" * 32, "ab" * 20 + "xx" * 12])
def test_bad_fingerprints_are_refused(text: str) -> None:
    with pytest.raises(InvalidFingerprintError) as err:
        normalize_fingerprint(text)
    assert err.value.reason == "invalid_fingerprint"
