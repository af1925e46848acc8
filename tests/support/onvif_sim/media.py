"""Media service answers (trt): profiles, video sources, snapshot and stream URIs."""

from __future__ import annotations

from .config import SimConfig, SimProfile
from .soap import attr, text

VIDEO_SOURCE_TOKEN = "video_source_0"
VIDEO_SOURCE_CONFIG_TOKEN = "video_source_config_0"
RTSP_PORT = 8554


def _sensor(config: SimConfig) -> tuple[int, int]:
    """The sensor is as large as the largest profile."""
    if not config.profiles:
        return 1920, 1080
    largest = max(config.profiles, key=lambda p: p.width * p.height)
    return largest.width, largest.height


def _profile(
    profile: SimProfile, config: SimConfig, *, with_video: bool, with_encoder: bool = True
) -> str:
    """One profile; without video it is audio-only, without an encoder NVR-style (source only)."""
    width, height = _sensor(config)
    source = (
        f"<tt:VideoSourceConfiguration token={attr(VIDEO_SOURCE_CONFIG_TOKEN)}>"
        "<tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount>"
        f"<tt:SourceToken>{VIDEO_SOURCE_TOKEN}</tt:SourceToken>"
        f'<tt:Bounds x="0" y="0" width="{width}" height="{height}"/>'
        "</tt:VideoSourceConfiguration>"
    )
    encoder = ""
    if not with_video:
        source = ""
    elif with_encoder:
        h264 = (
            f"<tt:H264><tt:GovLength>{profile.fps * 2}</tt:GovLength>"
            "<tt:H264Profile>Main</tt:H264Profile></tt:H264>"
            if profile.encoding == "H264"
            else ""
        )
        encoder = (
            f"<tt:VideoEncoderConfiguration token={attr('encoder_' + profile.token)}>"
            f"<tt:Name>{text(profile.name)}</tt:Name><tt:UseCount>1</tt:UseCount>"
            f"<tt:Encoding>{text(profile.encoding)}</tt:Encoding>"
            f"<tt:Resolution><tt:Width>{profile.width}</tt:Width>"
            f"<tt:Height>{profile.height}</tt:Height></tt:Resolution>"
            "<tt:Quality>5</tt:Quality>"
            f"<tt:RateControl><tt:FrameRateLimit>{profile.fps}</tt:FrameRateLimit>"
            "<tt:EncodingInterval>1</tt:EncodingInterval>"
            "<tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl>"
            f"{h264}"
            "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type>"
            "<tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port>"
            "<tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
            "<tt:SessionTimeout>PT60S</tt:SessionTimeout>"
            "</tt:VideoEncoderConfiguration>"
        )
    return (
        f'token={attr(profile.token)} fixed="true">'
        f"<tt:Name>{text(profile.name)}</tt:Name>{source}{encoder}"
    )


def profiles(config: SimConfig, *, with_video: bool, with_encoder: bool = True) -> str:
    """GetProfiles: every configured profile (empty list when the camera has none)."""
    body = "".join(
        f"<trt:Profiles {_profile(p, config, with_video=with_video, with_encoder=with_encoder)}"
        "</trt:Profiles>"
        for p in config.profiles
    )
    return f"<trt:GetProfilesResponse>{body}</trt:GetProfilesResponse>"


def profile(
    found: SimProfile, config: SimConfig, *, with_video: bool, with_encoder: bool = True
) -> str:
    """GetProfile: one profile by token."""
    body = _profile(found, config, with_video=with_video, with_encoder=with_encoder)
    return f"<trt:GetProfileResponse><trt:Profile {body}</trt:Profile></trt:GetProfileResponse>"


def video_sources(config: SimConfig) -> str:
    """GetVideoSources: the single sensor."""
    width, height = _sensor(config)
    fps = max((p.fps for p in config.profiles), default=15)
    return (
        f"<trt:GetVideoSourcesResponse><trt:VideoSources token={attr(VIDEO_SOURCE_TOKEN)}>"
        f"<tt:Framerate>{fps}</tt:Framerate>"
        f"<tt:Resolution><tt:Width>{width}</tt:Width><tt:Height>{height}</tt:Height></tt:Resolution>"
        "</trt:VideoSources></trt:GetVideoSourcesResponse>"
    )


def _media_uri(element: str, uri: str) -> str:
    return (
        f"<trt:{element}Response><trt:MediaUri><tt:Uri>{text(uri)}</tt:Uri>"
        "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
        "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
        "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:" + element + "Response>"
    )


def snapshot_uri(uri: str) -> str:
    """GetSnapshotUri: the given URI, verbatim (escaped only for XML)."""
    return _media_uri("GetSnapshotUri", uri)


def stream_uri(uri: str) -> str:
    """GetStreamUri: the given URI, verbatim (escaped only for XML)."""
    return _media_uri("GetStreamUri", uri)
