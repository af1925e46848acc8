"""ONVIF events: one PullPoint subscription per camera, parsed into one small model.

``PullPointStream`` keeps a subscription alive for as long as it runs: CreatePullPointSubscription,
then PullMessages long polls; Renew before the subscription ends, timed from what the camera's
own clock says (TerminationTime minus CurrentTime of its answers, so a camera whose clock is hours
off renews on time); a fault on a pull (the camera rebooted and forgot us, or expired the
subscription) makes a new subscription at once, and any further failure backs off, doubling up to
a ceiling. Unsubscribe is sent only when the stream is stopped (the entry unloads): some firmwares
drop every subscription when one unsubscribes, and an abandoned one expires by itself.

onvif-zeep-async 4.3.0 has a ``PullPointManager``; it is not used because it floors renewal at
48 s (a camera granting 30 s lapses between renewals), retries every 40 s without back-off, and
renews on a loop timer of its own that a caller cannot stop deterministically. Its service
factories (events, subscription and pullpoint services, termination-time formatting and the
broken-relative-time check) are used as they are.

Notifications are parsed with ``onvif_parsers`` (the library Home Assistant core's onvif
integration pins), then mapped by what the parser names them to ``EventKind``: motion, and the
camera's own person / vehicle / animal / line-crossing / intrusion detections. Free of Home
Assistant imports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
import datetime as dt
from enum import StrEnum
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from onvif.util import normalize_url
import onvif_parsers

from .error_mapping import mapped_errors
from .errors import CannotConnect, OnvifError, UnsafeUri
from .models import format_host_port
from .uri_guard import check_camera_uri

if TYPE_CHECKING:
    from onvif import ONVIFCamera, ONVIFService

_LOGGER = logging.getLogger(__name__)

SUBSCRIPTION_TIME = dt.timedelta(minutes=10)
"""What we ask for; cameras may grant less (renewal follows what they grant)."""
PULL_TIMEOUT = dt.timedelta(seconds=60)
"""The long poll: ONVIF cameras must support at least one minute."""
MESSAGE_LIMIT = 100
RENEW_AT = 0.8
"""Renew after this share of the granted lifetime, by the camera's clock."""
MIN_RENEW_S = 1.0
BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 300.0
PULSE_S = 5.0
"""How long a momentary happening (a line crossed, reported without an end) stays on."""
_PULL_ADDRESS = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"
_MAX_UNKNOWN_TOPICS = 32
# The library's keys of the services a stream opens (name, port type).
_STREAM_SERVICES = (
    ("events", None),
    ("subscription", "PullPointSubscription"),
    ("pullpoint", "PullPointSubscription"),
)


class EventKind(StrEnum):
    """What a camera event says happened, whatever the brand calls it."""

    MOTION = "motion"
    PERSON = "person"
    VEHICLE = "vehicle"
    ANIMAL = "animal"
    LINE_CROSSING = "line_crossing"
    INTRUSION = "intrusion"


# onvif_parsers' names (stable within its pinned version; tests/onvif/test_events.py covers each).
_KIND_BY_NAME: dict[str, EventKind] = {
    "Cell Motion Detection": EventKind.MOTION,
    "Motion Alarm": EventKind.MOTION,
    "Motion Region Detection": EventKind.MOTION,
    "Motion Detection": EventKind.MOTION,
    "Person Detection": EventKind.PERSON,
    "Human Shape Detect": EventKind.PERSON,
    "Vehicle Detection": EventKind.VEHICLE,
    "Pet Detection": EventKind.ANIMAL,
    "Line Detector Crossed": EventKind.LINE_CROSSING,
    "Field Detection": EventKind.INTRUSION,
    "Intrusion Detection": EventKind.INTRUSION,
}
# Topics a camera lists in GetEventProperties whose kind is known before any event arrives.
TOPIC_KINDS: dict[str, EventKind] = {
    "tns1:RuleEngine/CellMotionDetector/Motion": EventKind.MOTION,
    "tns1:VideoSource/MotionAlarm": EventKind.MOTION,
    "tns1:RuleEngine/MotionRegionDetector/Motion": EventKind.MOTION,
    "tns1:RuleEngine/MyRuleDetector/PeopleDetect": EventKind.PERSON,
    "tns1:UserAlarm/IVA/HumanShapeDetect": EventKind.PERSON,
    "tns1:RuleEngine/PeopleDetector/People": EventKind.PERSON,
    "tns1:RuleEngine/CellMotionDetector/People": EventKind.PERSON,
    "tns1:RuleEngine/MyRuleDetector/VehicleDetect": EventKind.VEHICLE,
    "tns1:RuleEngine/MyRuleDetector/DogCatDetect": EventKind.ANIMAL,
    "tns1:RuleEngine/LineDetector/Crossed": EventKind.LINE_CROSSING,
    "tns1:RuleEngine/LineCrossDetector/LineCross": EventKind.LINE_CROSSING,
    "tns1:RuleEngine/CellMotionDetector/LineCross": EventKind.LINE_CROSSING,
    "tns1:RuleEngine/FieldDetector/ObjectsInside": EventKind.INTRUSION,
    "tns1:RuleEngine/CellMotionDetector/Intrusion": EventKind.INTRUSION,
}


@dataclass(frozen=True, slots=True)
class CameraEvent:
    """One parsed notification: a kind of happening from one source (rule, video source)."""

    kind: EventKind
    source: str
    """The parser's id of the rule or video source: a camera may report one kind from several."""
    active: bool
    pulse: bool = False
    """A momentary happening without an end (on for PULSE_S, then off)."""


def kind_of(name: str) -> EventKind | None:
    """The kind of an event onvif_parsers named ``name``, or None for one we do not model."""
    return _KIND_BY_NAME.get(name)


def clean_topic(raw: str) -> str:
    """Topics arrive as ``tns1:A/B/C``, ``tns1:A/B/C/`` or ``tns1:A/B/C//.``: one spelling."""
    return raw.strip().rstrip("/.")


async def parse_notification(message: Any, uid: str) -> tuple[str, list[CameraEvent]]:
    """The topic of a zeep NotificationMessage and the events it means (none: not modelled)."""
    topic_element = getattr(message, "Topic", None)
    raw = getattr(topic_element, "_value_1", None)
    if not isinstance(raw, str) or not raw.strip():
        return "", []
    topic = clean_topic(raw)
    try:
        parsed = await onvif_parsers.parse(topic, uid, message)
    except onvif_parsers.errors.UnknownTopicError:
        return topic, []
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        # A known topic in a shape the parser does not expect: skipped, like core does.
        _LOGGER.debug("%s: cannot parse an event of topic %s", uid, topic)
        return topic, []
    events: list[CameraEvent] = []
    for entity in parsed:
        kind = kind_of(entity.name)
        if kind is None:
            continue
        if isinstance(entity.value, bool):
            events.append(CameraEvent(kind, entity.uid, entity.value))
        elif entity.value not in (None, ""):
            # E.g. LineDetector/Crossed carries the crossing object's id, not a state.
            events.append(CameraEvent(kind, entity.uid, True, pulse=True))
    return topic, events


def topics_of(topic_set: Any) -> list[str]:
    """Every topic path a GetEventProperties TopicSet declares (elements marked topic=true)."""
    elements = getattr(topic_set, "_value_1", None) or []
    found: list[str] = []

    def walk(element: Any, path: str, root_namespace: str | None) -> None:
        tag = getattr(element, "tag", None)
        if not isinstance(tag, str):
            return  # a comment or processing instruction
        namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        prefix = getattr(element, "prefix", None)
        # The root names its namespace (tns1:RuleEngine); below it only a vendor's own
        # namespace is spelled out (tns1:Device/Trigger/tnshik:AlarmIn).
        named = prefix and (root_namespace is None or namespace != root_namespace)
        here_name = f"{prefix}:{local}" if named else local
        here = f"{path}/{here_name}" if path else here_name
        attributes = {key.rsplit("}", 1)[-1]: value for key, value in element.attrib.items()}
        if attributes.get("topic") == "true":
            found.append(here)
        for child in element:
            walk(child, here, namespace if root_namespace is None else root_namespace)

    for element in elements:
        walk(element, "", None)
    return found


class EventStates:
    """The current state of each kind: on while any of its sources is on (or a pulse lasts)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with nothing known: every kind off."""
        self._clock = clock
        self._sources: dict[EventKind, dict[str, bool]] = {}
        self._pulse_until: dict[EventKind, float] = {}
        self.kinds_seen: set[EventKind] = set()

    def apply(self, events: Iterable[CameraEvent]) -> set[EventKind]:
        """Take in events; return the kinds whose state changed."""
        before = {kind: self.active(kind) for kind in EventKind}
        now = self._clock()
        for event in events:
            self.kinds_seen.add(event.kind)
            if event.pulse:
                self._pulse_until[event.kind] = now + PULSE_S
            else:
                self._sources.setdefault(event.kind, {})[event.source] = event.active
        return {kind for kind in EventKind if self.active(kind) != before[kind]}

    def active(self, kind: EventKind) -> bool:
        """Whether the camera reports ``kind`` now."""
        if any(self._sources.get(kind, {}).values()):
            return True
        return self._pulse_until.get(kind, float("-inf")) > self._clock()

    def next_pulse_end(self) -> float | None:
        """When (on the clock) the next pulse ends, for a timer that turns it off on time."""
        now = self._clock()
        ends = [end for end in self._pulse_until.values() if end > now]
        return min(ends) if ends else None

    def expire_pulses(self, until: float) -> None:
        """End the pulses due by ``until`` (a timer set for that moment calls this)."""
        for kind, end in list(self._pulse_until.items()):
            if end <= until:
                del self._pulse_until[kind]

    def reset(self) -> set[EventKind]:
        """Forget every state (the subscription was lost); return the kinds that were on."""
        was_on = {kind for kind in EventKind if self.active(kind)}
        self._sources.clear()
        self._pulse_until.clear()
        return was_on


class StreamState(StrEnum):
    """Where a PullPoint stream stands."""

    STARTING = "starting"
    SUBSCRIBED = "subscribed"
    RETRYING = "retrying"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """Figures of a stream for diagnostics."""

    state: StreamState = StreamState.STARTING
    subscriptions: int = 0
    renewals: int = 0
    pulls: int = 0
    messages: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    granted_s: float | None = None
    """The lifetime the camera granted the current subscription, by its clock."""
    declared_topics: tuple[str, ...] = ()
    unknown_topics: tuple[str, ...] = field(default=())


def backoff_delay(consecutive_failures: int) -> float:
    """Seconds before the next attempt after this many failures in a row: 2, 4, 8... 300."""
    if consecutive_failures <= 0:
        return 0.0
    return float(min(BACKOFF_MIN_S * 2 ** min(consecutive_failures - 1, 16), BACKOFF_MAX_S))


class _SubscriptionLostError(Exception):
    """The camera no longer knows the subscription (it rebooted, or let it expire)."""


def _lifetime(answer: Any) -> float | None:
    """TerminationTime minus CurrentTime of a camera answer, in seconds (the camera's clock)."""
    current = getattr(answer, "CurrentTime", None)
    termination = getattr(answer, "TerminationTime", None)
    if not isinstance(current, dt.datetime) or not isinstance(termination, dt.datetime):
        return None
    if (current.tzinfo is None) != (termination.tzinfo is None):
        return None
    return (termination - current).total_seconds()


class PullPointStream:
    """Keeps one camera's PullPoint subscription alive and hands its events to a callback."""

    def __init__(
        self,
        device: Callable[[], ONVIFCamera | None],
        host: str,
        port: int,
        uid: str,
        on_events: Callable[[list[CameraEvent]], None],
        *,
        on_state: Callable[[StreamState], None] | None = None,
        camera_addresses: Callable[[], tuple[str, ...]] = tuple,
        subscription_time: dt.timedelta = SUBSCRIPTION_TIME,
        pull_timeout: dt.timedelta = PULL_TIMEOUT,
        request_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Prepare the stream; nothing is sent until ``run``.

        ``device`` returns the camera's connected onvif-zeep-async device (a reconnect replaces
        it, and the stream then subscribes again through the new one).
        """
        self._device_of = device
        self.host = host
        self.port = port
        self._uid = uid
        self._on_events = on_events
        self._on_state = on_state
        self._camera_addresses = camera_addresses
        self._subscription_time = subscription_time
        self._pull_timeout = pull_timeout
        self._request_timeout = request_timeout
        self._clock = clock
        self._sleep = sleep
        self.status = StreamStatus()
        self._device: ONVIFCamera | None = None
        self._manager: ONVIFService | None = None
        self._pullpoint: ONVIFService | None = None
        self._renew_at = 0.0
        self._live = False
        self._unknown: set[str] = set()
        self._creating: set[asyncio.Future[ONVIFService]] = set()

    @property
    def subscribed(self) -> bool:
        """Whether a subscription is live (events arrive)."""
        return self.status.state is StreamState.SUBSCRIBED

    def _set(self, **changes: Any) -> None:
        state = self.status.state
        self.status = replace(self.status, **changes)
        if self.status.state is not state and self._on_state is not None:
            self._on_state(self.status.state)

    def _fail(self, err: Exception) -> float:
        failures = self.status.consecutive_failures + 1
        self._set(
            state=StreamState.RETRYING,
            failures=self.status.failures + 1,
            consecutive_failures=failures,
            last_error=type(err).__name__,
        )
        return backoff_delay(failures)

    async def run(self) -> None:
        """Subscribe and pull until cancelled; never raises for camera failures."""
        delay = 0.0
        while True:
            if delay:
                await self._sleep(delay)
            try:
                if not self._live or self._device is not self._device_of():
                    await self._subscribe()
                await self._pull_until_lost()
            except _SubscriptionLostError:
                self._live = False
                # The first attempt after a lost subscription is immediate (a reboot is over
                # once the camera answers again); failures from then on back off.
                delay = backoff_delay(self.status.consecutive_failures)
                self._set(state=StreamState.RETRYING)
            except OnvifError as err:
                _LOGGER.debug("%s: events: %s", self.host, err)
                delay = self._fail(err)
                if not isinstance(err, CannotConnect):
                    self._live = False

    async def _subscribe(self) -> None:
        device = self._device_of()
        if device is None:
            raise CannotConnect(f"{self.host}: not connected")
        self._device = device
        self._live = False
        self._manager = None
        async with mapped_errors(self.host, "subscribing to events", self._request_timeout):
            events = await self._service(device.create_events_service())
            asked = device.get_next_termination_time(self._subscription_time)
            answer = await events.CreatePullPointSubscription({"InitialTerminationTime": asked})
            address = normalize_url(answer.SubscriptionReference.Address._value_1)
            if not address:
                raise _SubscriptionLostError
            device.xaddrs[_PULL_ADDRESS] = self._pinned(address)
            manager = await self._service(
                device.create_subscription_service("PullPointSubscription")
            )
            self._manager = manager  # from now on, stopping unsubscribes
            pullpoint = await self._service(device.create_pullpoint_service())
            lifetime = _lifetime(answer)
            if device.has_broken_relative_time(
                self._subscription_time,
                getattr(answer, "CurrentTime", None),
                getattr(answer, "TerminationTime", None),
            ):
                # The camera took our duration for an absolute time: ask again in its clock.
                answer = await manager.Renew(
                    device.get_next_termination_time(self._subscription_time)
                )
                lifetime = _lifetime(answer)
        self._pullpoint = pullpoint
        self._live = True
        self._schedule_renewal(lifetime)
        self._set(
            state=StreamState.SUBSCRIBED,
            subscriptions=self.status.subscriptions + 1,
            consecutive_failures=0,
        )
        if not self.status.declared_topics:
            await self._read_topics(events)
        # Ask for the current state of every property (motion that is already on).
        try:
            async with mapped_errors(self.host, "synchronising events", self._request_timeout):
                await pullpoint.SetSynchronizationPoint()
        except OnvifError:
            _LOGGER.debug("%s: SetSynchronizationPoint failed; states come with changes", self.host)

    async def _service(self, create: Coroutine[Any, Any, ONVIFService]) -> ONVIFService:
        # Creating a service opens an HTTP session before it loads the WSDL: cancelled halfway,
        # the library would leak the session. So creation completes even while the stream is
        # stopped; the device then owns (and closes) the service.
        task = asyncio.ensure_future(create)
        self._creating.add(task)
        task.add_done_callback(self._creating.discard)
        return await asyncio.shield(task)

    async def _read_topics(self, events: ONVIFService) -> None:
        try:
            async with mapped_errors(self.host, "reading event properties", self._request_timeout):
                properties = await events.GetEventProperties()
        except OnvifError:
            return
        topics = topics_of(getattr(properties, "TopicSet", None))
        self._set(declared_topics=tuple(sorted(set(topics))))

    def _pinned(self, address: str) -> str:
        """The subscription address, kept on the camera (as the service addresses are)."""
        try:
            return check_camera_uri(
                address, self.host, "service", camera_addresses=self._camera_addresses()
            )
        except UnsafeUri:
            parts = urlsplit(address)
            scheme = "https" if parts.scheme == "https" else "http"
            netloc = format_host_port(self.host, self.port, 443 if scheme == "https" else 80)
            _LOGGER.debug("%s: subscription address moved onto the camera", self.host)
            return urlunsplit((scheme, netloc, parts.path, parts.query, ""))

    def _schedule_renewal(self, lifetime: float | None) -> None:
        granted = lifetime if lifetime and lifetime > 0 else None
        seconds = granted or self._subscription_time.total_seconds()
        self._renew_at = self._clock() + max(seconds * RENEW_AT, MIN_RENEW_S)
        self._set(granted_s=granted)

    async def _renew(self) -> None:
        assert self._manager is not None
        assert self._device is not None
        try:
            async with mapped_errors(self.host, "renewing the subscription", self._request_timeout):
                answer = await self._manager.Renew(
                    self._device.get_next_termination_time(self._subscription_time)
                )
        except CannotConnect:
            raise
        except OnvifError as err:
            _LOGGER.debug("%s: renewal refused: %s", self.host, err)
            raise _SubscriptionLostError from err
        self._schedule_renewal(_lifetime(answer))
        self._set(renewals=self.status.renewals + 1)

    async def _pull_until_lost(self) -> None:
        while True:
            if self._device is not self._device_of():
                raise _SubscriptionLostError
            # Long polls last whole seconds (what every camera accepts): less than one second
            # before the renewal is due, renew now rather than poll past it.
            if self._renew_at - self._clock() < 1:
                await self._renew()
            wait = max(
                1, int(min(self._pull_timeout.total_seconds(), self._renew_at - self._clock()))
            )
            assert self._pullpoint is not None
            try:
                async with mapped_errors(self.host, "pulling events", wait + self._request_timeout):
                    answer = await self._pullpoint.PullMessages(
                        {"MessageLimit": MESSAGE_LIMIT, "Timeout": dt.timedelta(seconds=wait)}
                    )
            except CannotConnect:
                raise
            except OnvifError as err:
                _LOGGER.debug("%s: pull refused, subscribing again: %s", self.host, err)
                raise _SubscriptionLostError from err
            except RuntimeError as err:
                # The client's session was closed under us (the camera reconnected).
                raise _SubscriptionLostError from err
            self._set(pulls=self.status.pulls + 1, consecutive_failures=0)
            await self._handle(getattr(answer, "NotificationMessage", None) or [])

    async def _handle(self, messages: list[Any]) -> None:
        events: list[CameraEvent] = []
        for message in messages:
            topic, parsed = await parse_notification(message, self._uid)
            new = not parsed and topic and topic not in self._unknown
            if new and len(self._unknown) < _MAX_UNKNOWN_TOPICS:
                self._unknown.add(topic)
                self._set(unknown_topics=tuple(sorted(self._unknown)))
            events.extend(parsed)
        if messages:
            self._set(messages=self.status.messages + len(messages))
        if events:
            self._on_events(events)

    async def async_stop(self) -> None:
        """Unsubscribe (best effort): called when the stream's task has been cancelled."""
        if self._creating:
            await asyncio.gather(*self._creating, return_exceptions=True)
        manager, self._manager = self._manager, None
        self._set(state=StreamState.STOPPED)
        if manager is None:
            return
        try:
            async with mapped_errors(self.host, "unsubscribing", self._request_timeout):
                await manager.Unsubscribe()
        except OnvifError as err:
            _LOGGER.debug("%s: Unsubscribe failed (it expires by itself): %s", self.host, err)

    async def async_close(self) -> None:
        """Stop, then close the services this stream opened (the device keeps its others).

        The connected device would close them when the camera's client closes; Home Assistant
        stopping does not close it, and their idle HTTP connections would linger.
        """
        await self.async_stop()
        device = self._device
        if device is None:
            return
        # Closed, not removed: the camera's client may be closing the device (iterating its
        # services) at the same time, and closing a service twice is harmless.
        for service in [device.services.get(key) for key in _STREAM_SERVICES]:
            if service is not None:
                await service.close()  # type: ignore[no-untyped-call]
