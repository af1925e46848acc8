"""Table-driven tests of the guard for camera-supplied snapshot and stream URIs."""

from __future__ import annotations

import pytest

from custom_components.home_security_intel.onvif import UnsafeUri, check_camera_uri
from custom_components.home_security_intel.onvif.uri_guard import uri_host

ALLOWED = [
    # (uri, camera host, kind)
    ("http://192.168.1.20/snap.jpg", "192.168.1.20", "snapshot"),
    ("https://192.168.1.20:8443/cgi-bin/snap?chn=1", "192.168.1.20", "snapshot"),
    ("HTTP://192.168.1.20/x.jpg", "192.168.1.20", "snapshot"),
    ("rtsp://192.168.1.20:554/Streaming/101", "192.168.1.20", "stream"),
    ("rtsps://192.168.1.20:322/live", "192.168.1.20", "stream"),
    ("http://Cam.Example.LAN/x.jpg", "cam.example.lan", "snapshot"),
    ("http://cam.example.lan./x.jpg", "CAM.example.lan", "snapshot"),
    ("http://[fd00::20]/x.jpg", "fd00::20", "snapshot"),
    ("http://[fd00:0:0:0:0:0:0:20]:8080/x.jpg", "[fd00::20]", "snapshot"),
    ("rtsp://[2001:db8::1]/live", "2001:DB8::1", "stream"),
    # A camera configured at a special address may use it: it IS the camera.
    ("http://127.0.0.1:8080/snapshot.jpg", "127.0.0.1", "snapshot"),
    ("rtsp://127.0.0.1:8554/main", "127.0.0.1", "stream"),
    ("http://localhost/x.jpg", "localhost", "snapshot"),
    ("http://[::1]/x.jpg", "::1", "snapshot"),
    ("http://169.254.10.20/x.jpg", "169.254.10.20", "snapshot"),
    ("http://[fe80::1]/x.jpg", "fe80::1", "snapshot"),
    ("http://[fe80::1%25eth0]/x.jpg", "fe80::1", "snapshot"),
    # IPv4-mapped IPv6 and legacy IPv4 spellings are the same host.
    ("http://[::ffff:192.168.1.20]/x.jpg", "192.168.1.20", "snapshot"),
    ("http://3232235796/x.jpg", "192.168.1.20", "snapshot"),
    # Any port on the camera is fine (cameras serve snapshots and RTSP on their own ports).
    ("http://192.168.1.20:65535/x.jpg", "192.168.1.20", "snapshot"),
]

REFUSED = [
    # (uri, camera host, kind, words in the reason, reported host)
    ("http://169.254.169.254/latest/meta-data/", "192.168.1.20", "snapshot", "metadata", ""),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "snapshot", "metadata", ""),
    ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254", "snapshot", "metadata", ""),
    ("http://[::ffff:169.254.169.254]/", "192.168.1.20", "snapshot", "metadata", ""),
    ("http://2852039166/latest/", "192.168.1.20", "snapshot", "metadata", ""),
    ("http://0xa9fea9fe/latest/", "192.168.1.20", "snapshot", "metadata", ""),
    ("http://169.254.43518/latest/", "192.168.1.20", "snapshot", "metadata", ""),
    (
        "http://metadata.google.internal/computeMetadata/v1/",
        "192.168.1.20",
        "snapshot",
        "metadata",
        "",
    ),
    ("http://METADATA.google.internal./x", "metadata.google.internal", "snapshot", "metadata", ""),
    ("http://evil.example/x.jpg", "192.168.1.20", "snapshot", "not the camera", "evil.example"),
    ("http://192.168.1.21/x.jpg", "192.168.1.20", "snapshot", "not the camera", "192.168.1.21"),
    ("rtsp://10.0.0.5/live", "192.168.1.20", "stream", "not the camera", "10.0.0.5"),
    ("http://[fd00::21]/x.jpg", "fd00::20", "snapshot", "not the camera", "fd00::21"),
    (
        "http://cam.example.lan.evil.example/x",
        "cam.example.lan",
        "snapshot",
        "not the camera",
        "cam.example.lan.evil.example",
    ),
    # Special addresses other than the camera's own.
    ("http://127.0.0.1/x.jpg", "192.168.1.20", "snapshot", "loopback", "127.0.0.1"),
    ("http://127.0.0.2:8123/api", "127.0.0.1", "snapshot", "loopback", "127.0.0.2"),
    ("http://localhost:8123/api/", "192.168.1.20", "snapshot", "loopback", "localhost"),
    ("http://[::1]:8123/", "192.168.1.20", "snapshot", "loopback", "::1"),
    ("http://[::ffff:127.0.0.1]/", "192.168.1.20", "snapshot", "loopback", "::ffff:127.0.0.1"),
    ("http://2130706433/", "192.168.1.20", "snapshot", "loopback", "2130706433"),
    ("http://169.254.1.1/x", "192.168.1.20", "snapshot", "link-local", "169.254.1.1"),
    ("http://[fe80::2]/x", "fe80::1", "snapshot", "link-local", "fe80::2"),
    ("http://0.0.0.0/x", "192.168.1.20", "snapshot", "unspecified", "0.0.0.0"),
    ("http://[::]/x", "192.168.1.20", "snapshot", "unspecified", "::"),
    ("rtsp://239.1.2.3/live", "192.168.1.20", "stream", "multicast", "239.1.2.3"),
    ("rtsp://[ff02::1]/live", "192.168.1.20", "stream", "multicast", "ff02::1"),
    # Userinfo smuggling: the real host is after the "@", and it is not the camera.
    (
        "http://192.168.1.20@evil.example/x.jpg",
        "192.168.1.20",
        "snapshot",
        "not the camera",
        "evil.example",
    ),
    (
        "http://192.168.1.20:80@evil.example/x",
        "192.168.1.20",
        "snapshot",
        "not the camera",
        "evil.example",
    ),
    (
        "http://admin:pw@169.254.169.254/latest/meta-data/",
        "192.168.1.20",
        "snapshot",
        "metadata",
        "169.254.169.254",
    ),
    # Two "@": parsers disagree on the host.
    ("http://a@evil.example@192.168.1.20/x", "192.168.1.20", "snapshot", "ambiguous", ""),
    # Parser confusion.
    ("http://192.168.1.20\\@evil.example/x", "192.168.1.20", "snapshot", "backslash", ""),
    ("http://evil.example\t/x", "evil.example", "snapshot", "whitespace", ""),
    ("http://192.168.1.20 /x", "192.168.1.20", "snapshot", "whitespace", ""),
    ("http://[192.168.1.20/x", "192.168.1.20", "snapshot", "cannot be parsed", ""),
    # Schemes.
    ("rtsp://192.168.1.20/live", "192.168.1.20", "snapshot", "scheme", ""),
    ("http://192.168.1.20/x.jpg", "192.168.1.20", "stream", "scheme", ""),
    ("file:///etc/passwd", "192.168.1.20", "snapshot", "scheme", ""),
    ("ftp://192.168.1.20/x.jpg", "192.168.1.20", "snapshot", "scheme", ""),
    ("gopher://192.168.1.20:70/", "192.168.1.20", "snapshot", "scheme", ""),
    ("//192.168.1.20/x.jpg", "192.168.1.20", "snapshot", "missing", ""),
    ("/snapshot.jpg", "192.168.1.20", "snapshot", "missing", ""),
    ("http:///x.jpg", "192.168.1.20", "snapshot", "no host", ""),
    # Ports.
    ("http://192.168.1.20:99999/x", "192.168.1.20", "snapshot", "port", ""),
    ("http://192.168.1.20:-1/x", "192.168.1.20", "snapshot", "port", ""),
    ("http://192.168.1.20:abc/x", "192.168.1.20", "snapshot", "port", ""),
    ("http://192.168.1.20:0/x", "192.168.1.20", "snapshot", "port 0", "192.168.1.20"),
]


@pytest.mark.parametrize(("uri", "camera_host", "kind"), ALLOWED)
def test_allowed(uri: str, camera_host: str, kind: str) -> None:
    assert check_camera_uri(uri, camera_host, kind) == uri


@pytest.mark.parametrize(("uri", "camera_host", "kind", "reason", "host"), REFUSED)
def test_refused(uri: str, camera_host: str, kind: str, reason: str, host: str) -> None:
    with pytest.raises(UnsafeUri) as caught:
        check_camera_uri(uri, camera_host, kind)

    assert reason in caught.value.reason
    if host:
        assert caught.value.uri_host == host
    assert "pw@" not in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "kind", "expected"),
    [
        ("http://admin:pw@192.168.1.20/x.jpg", "snapshot", "http://192.168.1.20/x.jpg"),
        ("rtsp://u:p@192.168.1.20:554/live?ch=1", "stream", "rtsp://192.168.1.20:554/live?ch=1"),
        ("rtsp://user@[fe80::1]/live", "stream", "rtsp://[fe80::1]/live"),
    ],
)
def test_camera_embedded_credentials_are_dropped(uri: str, kind: str, expected: str) -> None:
    """Cameras that put their own credentials in their URIs still work, without them."""
    camera = "fe80::1" if "fe80" in uri else "192.168.1.20"
    assert check_camera_uri(uri, camera, kind) == expected


def test_resolved_addresses_of_a_named_camera_count_as_the_camera() -> None:
    uri = "http://192.168.1.20/x.jpg"
    assert check_camera_uri(uri, "cam.lan", "snapshot", camera_addresses=["192.168.1.20"]) == uri
    with pytest.raises(UnsafeUri):
        check_camera_uri(uri, "cam.lan", "snapshot", camera_addresses=["192.168.1.21"])
    with pytest.raises(UnsafeUri, match="metadata"):
        check_camera_uri(
            "http://169.254.169.254/", "cam.lan", "snapshot", camera_addresses=["169.254.169.254"]
        )


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown URI kind"):
        check_camera_uri("http://192.168.1.20/", "192.168.1.20", "video")


@pytest.mark.parametrize(
    ("uri", "host"),
    [("http://Evil.Example:81/x", "evil.example"), ("http://[::1/", ""), ("/relative", "")],
)
def test_uri_host_for_reports(uri: str, host: str) -> None:
    assert uri_host(uri) == host
