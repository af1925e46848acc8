"""PullPoint events against the real ONVIF simulator, through onvif-zeep-async and onvif_parsers.

Each firmware behaviour of the simulator's event service is exercised: motion on command and on a
schedule, a camera clock far from ours with short subscriptions (renewal), a reboot that forgets
every subscription, an early expiry, refused subscriptions (back-off), Unsubscribe at stop only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import datetime as dt
from types import SimpleNamespace

from lxml import etree
import pytest

from custom_components.home_security_intel.onvif import OnvifCamera
from custom_components.home_security_intel.onvif.events import (
    PULSE_S,
    CameraEvent,
    EventKind,
    EventStates,
    PullPointStream,
    StreamState,
    backoff_delay,
    clean_topic,
    kind_of,
    parse_notification,
    topics_of,
)
from tests.common import wait_until
from tests.support.onvif_sim import OnvifSimulator
from tests.support.onvif_sim.events import MotionSchedule, follow_motion, scene_motion
from tests.support.onvif_sim.scene import Scene, SceneStep


@dataclass
class Harness:
    """A connected camera client, its event stream (running) and what the stream delivered."""

    camera: OnvifCamera
    stream: PullPointStream
    events: list[CameraEvent] = field(default_factory=list)
    states: list[StreamState] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def motion(self) -> bool | None:
        """The last motion state delivered (any source), None before any."""
        motion = [event.active for event in self.events if event.kind is EventKind.MOTION]
        return motion[-1] if motion else None


async def _start(
    sim: OnvifSimulator, *, sleep: Callable[[float], Awaitable[None]] | None = None
) -> tuple[Harness, asyncio.Task[None]]:
    camera = OnvifCamera(sim.host, sim.port, sim.config.username, sim.config.password)
    info = await camera.async_connect()
    assert info.supports_events
    harness: Harness

    async def recorded_sleep(seconds: float) -> None:
        harness.sleeps.append(seconds)
        await asyncio.sleep(0)

    stream = PullPointStream(
        lambda: camera.events_device,
        camera.host,
        camera.port,
        info.identity.unique_id,
        lambda events: harness.events.extend(events),
        on_state=lambda state: harness.states.append(state),
        camera_addresses=lambda: camera.camera_addresses,
        sleep=sleep or recorded_sleep,
    )
    harness = Harness(camera, stream)
    return harness, asyncio.create_task(stream.run())


@pytest.fixture
async def events(onvif_sim: OnvifSimulator) -> AsyncGenerator[Harness]:
    """A running stream on the default simulator; stopped and closed after the test."""
    harness, task = await _start(onvif_sim)
    try:
        yield harness
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await harness.stream.async_stop()
        await harness.camera.async_close()


async def _subscribed(harness: Harness, count: int = 1) -> None:
    await wait_until(
        lambda: harness.stream.subscribed and harness.stream.status.subscriptions >= count,
        f"subscription {count}",
    )


async def test_motion_on_command(events: Harness, onvif_sim: OnvifSimulator) -> None:
    """Initial state from the synchronisation point, then each change the camera reports."""
    await _subscribed(events)
    await wait_until(lambda: events.motion() is False, "initial motion state")
    onvif_sim.set_motion(True)
    await wait_until(lambda: events.motion() is True, "motion on")
    onvif_sim.set_motion(False)
    await wait_until(lambda: events.motion() is False, "motion off")
    # Both motion topics of the camera arrive, each as its own source of the one kind.
    sources = {event.source for event in events.events}
    assert len(sources) == 2
    assert all(event.kind is EventKind.MOTION for event in events.events)
    status = events.stream.status
    assert status.declared_topics == (
        "tns1:RuleEngine/CellMotionDetector/Motion",
        "tns1:VideoSource/MotionAlarm",
    )
    assert status.granted_s == 600
    assert status.unknown_topics == ()
    assert "Unsubscribe" not in onvif_sim.requests


async def test_motion_on_a_schedule(events: Harness, onvif_sim: OnvifSimulator) -> None:
    """The simulator's schedule turns motion on inside its window and off outside it."""
    now = [0.0]
    schedule = MotionSchedule(((1.0, 2.0),), period=3.0, clock=lambda: now[0], started=0.0)
    await _subscribed(events)
    follower = asyncio.create_task(follow_motion(onvif_sim.set_motion, schedule, every=0.01))
    try:
        await wait_until(lambda: events.motion() is False, "off before the window")
        now[0] = 1.5
        await wait_until(lambda: events.motion() is True, "on inside the window")
        now[0] = 2.5
        await wait_until(lambda: events.motion() is False, "off after the window")
        now[0] = 4.2  # the next period's window
        await wait_until(lambda: events.motion() is True, "on in the next period")
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


def test_scene_motion_follows_people() -> None:
    """The demo's motion is on exactly while its scene shows somebody."""
    now = [0.0]
    scene = Scene(
        [SceneStep(b"empty", 20.0), SceneStep(b"person", 50.0, people=1), SceneStep(b"e", 30.0)],
        clock=lambda: now[0],
    )
    motion = scene_motion(scene)
    seen = []
    for second in (0, 19.9, 20, 45, 69.9, 70, 99, 120):
        now[0] = second
        seen.append(motion())
    assert seen == [False, False, True, True, True, False, False, True]


async def test_renewal_follows_the_camera_clock(onvif_sim: OnvifSimulator) -> None:
    """A camera two hours ahead that grants 2 s subscriptions is renewed in time, by its clock:
    the one subscription never lapses and events keep arriving."""
    onvif_sim.clock_skew = 7200
    onvif_sim.events.max_lifetime = dt.timedelta(seconds=2)
    harness, task = await _start(onvif_sim)
    try:
        await _subscribed(harness)
        await wait_until(lambda: harness.stream.status.renewals >= 3, "three renewals")
        onvif_sim.set_motion(True)
        await wait_until(lambda: harness.motion() is True, "motion after renewals")
        status = harness.stream.status
        assert status.subscriptions == 1
        assert status.granted_s == 2
        assert status.failures == 0
        assert onvif_sim.requests.count("CreatePullPointSubscription") == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await harness.stream.async_stop()
        await harness.camera.async_close()


async def test_resubscribes_after_a_reboot(events: Harness, onvif_sim: OnvifSimulator) -> None:
    """A reboot forgets the subscription: the next pull's fault makes a new one at once (no
    back-off sleep), without Unsubscribe, and motion after the reboot arrives."""
    await _subscribed(events)
    onvif_sim.reboot()
    await _subscribed(events, 2)
    assert events.sleeps == []
    assert StreamState.RETRYING in events.states
    onvif_sim.set_motion(True)
    await wait_until(lambda: events.motion() is True, "motion after the reboot")
    assert "Unsubscribe" not in onvif_sim.requests
    assert len(onvif_sim.events.subscriptions) == 1


async def test_resubscribes_after_an_early_expiry(
    events: Harness, onvif_sim: OnvifSimulator
) -> None:
    """A camera that ends a subscription before its time is subscribed to again."""
    await _subscribed(events)
    for subscription in onvif_sim.events.subscriptions.values():
        subscription.terminates_at = onvif_sim.camera_now()
    onvif_sim.set_motion(True)  # wakes the long poll, which finds the subscription gone
    await _subscribed(events, 2)
    await wait_until(lambda: events.motion() is True, "motion on the new subscription")


async def test_refused_subscriptions_back_off(onvif_sim: OnvifSimulator) -> None:
    """A camera refusing subscriptions is retried with doubling delays, then subscribed."""
    onvif_sim.events.refuse_subscriptions = True
    harness, task = await _start(onvif_sim)
    try:
        await wait_until(lambda: len(harness.sleeps) >= 4, "four retries")
        assert harness.sleeps[:4] == [2.0, 4.0, 8.0, 16.0]
        assert harness.stream.status.state is StreamState.RETRYING
        assert harness.stream.status.last_error == "CameraFault"
        onvif_sim.events.refuse_subscriptions = False
        await _subscribed(harness)
        assert harness.stream.status.consecutive_failures == 0
        assert harness.stream.status.failures >= 4
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await harness.stream.async_stop()
        await harness.camera.async_close()


async def test_unreachable_camera_backs_off_and_keeps_its_subscription(
    events: Harness, onvif_sim: OnvifSimulator
) -> None:
    """A camera that stops answering is retried with back-off on the same subscription."""
    await _subscribed(events)
    onvif_sim.offline = True
    onvif_sim.set_motion(True)  # ends the long poll; the next one cannot connect
    await wait_until(lambda: len(events.sleeps) >= 2, "two retries")
    assert events.sleeps[:2] == [2.0, 4.0]
    assert events.stream.status.last_error == "CannotConnect"
    onvif_sim.offline = False
    onvif_sim.set_motion(False)
    await wait_until(lambda: events.stream.status.consecutive_failures == 0, "back")
    assert events.stream.status.subscriptions == 1


async def test_unsubscribes_only_at_stop(onvif_sim: OnvifSimulator) -> None:
    """Stopping sends one Unsubscribe and leaves no subscription on the camera."""
    harness, task = await _start(onvif_sim)
    await _subscribed(harness)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert "Unsubscribe" not in onvif_sim.requests
    await harness.stream.async_stop()
    await harness.camera.async_close()
    assert onvif_sim.requests.count("Unsubscribe") == 1
    assert onvif_sim.events.subscriptions == {}
    assert harness.stream.status.state is StreamState.STOPPED
    # Stopping again (nothing left to end) sends nothing.
    await harness.stream.async_stop()
    assert onvif_sim.requests.count("Unsubscribe") == 1


async def test_stop_of_an_unreachable_camera(onvif_sim: OnvifSimulator) -> None:
    """Unsubscribe is best effort: a camera gone away does not make stopping fail."""
    harness, task = await _start(onvif_sim)
    try:
        await _subscribed(harness)
        onvif_sim.offline = True
        # As at unload: the stream's task ends first, then Unsubscribe is tried.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await harness.stream.async_stop()
        assert harness.stream.status.state is StreamState.STOPPED
    finally:
        await harness.camera.async_close()


async def test_reconnected_camera_is_subscribed_again(
    events: Harness, onvif_sim: OnvifSimulator
) -> None:
    """When the client reconnects (a new device), the stream subscribes through the new one."""
    await _subscribed(events)
    await events.camera.async_connect()
    onvif_sim.set_motion(True)  # ends the long poll on the old device
    await _subscribed(events, 2)
    onvif_sim.set_motion(False)
    await wait_until(lambda: events.motion() is False and onvif_sim.events.motion is False)


async def test_not_connected_camera_retries(onvif_sim: OnvifSimulator) -> None:
    """Without a connected device the stream waits (backing off) instead of failing."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    stream = PullPointStream(
        lambda: None, "127.0.0.1", onvif_sim.port, "uid", lambda _: None, sleep=sleep
    )
    task = asyncio.create_task(stream.run())
    await wait_until(lambda: len(sleeps) >= 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert stream.status.last_error == "CannotConnect"
    await stream.async_stop()


def test_subscription_address_is_pinned_to_the_camera() -> None:
    """A subscription address on another host is moved onto the camera, path kept."""
    stream = PullPointStream(lambda: None, "192.0.2.5", 8080, "uid", lambda _: None)
    pinned = stream._pinned("http://evil.example:81/onvif/Subscription?Idx=3")
    assert pinned == "http://192.0.2.5:8080/onvif/Subscription?Idx=3"
    assert stream._pinned("http://192.0.2.5:8080/sub/1") == "http://192.0.2.5:8080/sub/1"


def test_backoff_doubles_to_a_ceiling() -> None:
    """2, 4, 8 ... seconds, never more than five minutes."""
    assert backoff_delay(0) == 0
    assert [backoff_delay(n) for n in (1, 2, 3)] == [2, 4, 8]
    assert backoff_delay(9) == 300
    assert backoff_delay(10_000) == 300


# --- parsing brands' topics into the model ------------------------------------------------------


def _items(**values: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(Name=name, Value=value) for name, value in values.items()]


def _message(topic: str, source: dict[str, str], data: dict[str, str]) -> SimpleNamespace:
    """The shape zeep gives a NotificationMessage (what onvif_parsers reads)."""
    payload = SimpleNamespace(
        Source=SimpleNamespace(SimpleItem=_items(**source)),
        Data=SimpleNamespace(SimpleItem=_items(**data)),
    )
    return SimpleNamespace(
        Topic=SimpleNamespace(_value_1=topic), Message=SimpleNamespace(_value_1=payload)
    )


@pytest.mark.parametrize(
    ("topic", "source", "data", "kind", "active"),
    [
        (  # the ONVIF profile-S motion rule (most brands)
            "tns1:RuleEngine/CellMotionDetector/Motion",
            {"VideoSourceConfigurationToken": "vsc", "Rule": "r"},
            {"IsMotion": "true"},
            EventKind.MOTION,
            True,
        ),
        ("tns1:VideoSource/MotionAlarm", {"Source": "vs"}, {"State": "false"}, "motion", False),
        (  # Reolink
            "tns1:RuleEngine/MyRuleDetector/PeopleDetect",
            {"Source": "vs"},
            {"State": "true"},
            EventKind.PERSON,
            True,
        ),
        (
            "tns1:RuleEngine/MyRuleDetector/VehicleDetect",
            {"Source": "vs"},
            {"State": "true"},
            EventKind.VEHICLE,
            True,
        ),
        (
            "tns1:RuleEngine/MyRuleDetector/DogCatDetect",
            {"Source": "vs"},
            {"State": "true"},
            EventKind.ANIMAL,
            True,
        ),
        (  # Tapo: the kind is in the data item's name
            "tns1:RuleEngine/TPSmartEventDetector/TPSmartEvent",
            {"VideoSourceConfigurationToken": "vsc", "Rule": "r"},
            {"IsPeople": "true"},
            EventKind.PERSON,
            True,
        ),
        (
            "tns1:RuleEngine/TPSmartEventDetector/TPSmartEvent",
            {"VideoSourceConfigurationToken": "vsc", "Rule": "r"},
            {"IsLineCross": "true"},
            EventKind.LINE_CROSSING,
            True,
        ),
        (  # Hikvision's human shape rule, with the topic's trailing "//." some firmwares send
            "tns1:UserAlarm/IVA/HumanShapeDetect//.",
            {"VideoSourceConfigurationToken": "vsc"},
            {"State": "true"},
            EventKind.PERSON,
            True,
        ),
        (
            "tns1:RuleEngine/FieldDetector/ObjectsInside",
            {"VideoSourceConfigurationToken": "vsc", "Rule": "r"},
            {"IsInside": "true"},
            EventKind.INTRUSION,
            True,
        ),
    ],
)
async def test_brands_map_to_one_model(
    topic: str, source: dict[str, str], data: dict[str, str], kind: EventKind, active: bool
) -> None:
    """Each brand's topic and payload becomes the same kind of CameraEvent."""
    parsed_topic, events = await parse_notification(_message(topic, source, data), "cam")
    assert parsed_topic == clean_topic(topic)
    assert [(event.kind, event.active, event.pulse) for event in events] == [(kind, active, False)]
    assert events[0].source.startswith("cam_")


async def test_line_crossed_is_a_pulse() -> None:
    """LineDetector/Crossed carries the crossing object's id: a momentary happening."""
    message = _message(
        "tns1:RuleEngine/LineDetector/Crossed",
        {"VideoSourceConfigurationToken": "vsc", "Rule": "line"},
        {"ObjectId": "42"},
    )
    _, events = await parse_notification(message, "cam")
    assert [(event.kind, event.active, event.pulse) for event in events] == [
        (EventKind.LINE_CROSSING, True, True)
    ]


async def test_unmodelled_unknown_and_broken_messages_give_nothing() -> None:
    """A known topic we do not model, an unknown topic, a broken payload, no topic: no events."""
    dark = _message("tns1:VideoSource/ImageTooDark/ImagingService", {"Source": "vs"}, {"S": "1"})
    assert await parse_notification(dark, "cam") == (
        "tns1:VideoSource/ImageTooDark/ImagingService",
        [],
    )
    unknown = _message("tns1:Vendor/Thing", {"Source": "vs"}, {"State": "true"})
    assert await parse_notification(unknown, "cam") == ("tns1:Vendor/Thing", [])
    broken = SimpleNamespace(
        Topic=SimpleNamespace(_value_1="tns1:VideoSource/MotionAlarm"),
        Message=SimpleNamespace(_value_1=SimpleNamespace()),
    )
    assert await parse_notification(broken, "cam") == ("tns1:VideoSource/MotionAlarm", [])
    assert await parse_notification(SimpleNamespace(), "cam") == ("", [])
    assert kind_of("Storage Failure") is None


def test_declared_topics_are_read_from_the_topic_set() -> None:
    """GetEventProperties' topic tree gives the topic paths marked as topics."""
    xml = (
        '<root xmlns:tns1="http://www.onvif.org/ver10/topics" '
        'xmlns:wstop="http://docs.oasis-open.org/wsn/t-1" '
        'xmlns:tnshik="http://www.hikvision.com/2011/event/topics">'
        '<tns1:RuleEngine wstop:topic="false"><CellMotionDetector>'
        '<Motion wstop:topic="true"/></CellMotionDetector>'
        '<tns1:LineDetector><tns1:Crossed wstop:topic="true"/></tns1:LineDetector>'
        "</tns1:RuleEngine>"
        '<tns1:Device><Trigger><tnshik:AlarmIn wstop:topic="true"/><!-- note --></Trigger>'
        "</tns1:Device></root>"
    )
    root = etree.fromstring(xml)
    topics = topics_of(SimpleNamespace(_value_1=list(root)))
    assert topics == [
        "tns1:RuleEngine/CellMotionDetector/Motion",
        "tns1:RuleEngine/LineDetector/Crossed",
        "tns1:Device/Trigger/tnshik:AlarmIn",
    ]
    assert topics_of(None) == []


def test_states_combine_sources_and_pulses() -> None:
    """A kind is on while any of its sources is; a pulse lasts PULSE_S; reset forgets all."""
    now = [100.0]
    states = EventStates(clock=lambda: now[0])
    motion = EventKind.MOTION
    assert states.apply([CameraEvent(motion, "a", True)]) == {motion}
    assert states.apply([CameraEvent(motion, "b", True)]) == set()
    assert states.apply([CameraEvent(motion, "a", False)]) == set()
    assert states.active(motion)
    assert states.apply([CameraEvent(motion, "b", False)]) == {motion}
    line = EventKind.LINE_CROSSING
    assert states.apply([CameraEvent(line, "l", True, pulse=True)]) == {line}
    assert states.next_pulse_end() == 100.0 + PULSE_S
    now[0] += PULSE_S
    assert not states.active(line)
    assert states.next_pulse_end() is None
    states.apply([CameraEvent(line, "l", True, pulse=True), CameraEvent(motion, "a", True)])
    states.expire_pulses(now[0] + PULSE_S)
    assert not states.active(line)
    assert states.reset() == {motion}
    assert not states.active(motion)
    assert states.kinds_seen == {motion, line}
