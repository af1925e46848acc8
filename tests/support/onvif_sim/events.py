"""Event service (tev/wsnt): PullPoint subscriptions that deliver motion notifications.

Behaves like camera firmware does: subscriptions expire on the camera's clock unless renewed, a
firmware may grant less than asked (``max_lifetime``), a reboot forgets every subscription (a
pull on one then answers ResourceUnknown), a camera may refuse new subscriptions for a while
(``refuse_subscriptions``), and motion follows a test's command (``set_motion``), a schedule
(``MotionSchedule``) or the demo scene's timeline (``scene_motion``), driven by ``follow_motion``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import datetime as dt
import re
import secrets

from .media import VIDEO_SOURCE_CONFIG_TOKEN, VIDEO_SOURCE_TOKEN
from .scene import Clock, Scene
from .soap import attr, text, xml_datetime

MOTION_TOPIC = "tns1:RuleEngine/CellMotionDetector/Motion"
MOTION_ALARM_TOPIC = "tns1:VideoSource/MotionAlarm"
PERSON_TOPIC = "tns1:RuleEngine/MyRuleDetector/PeopleDetect"
VEHICLE_TOPIC = "tns1:RuleEngine/MyRuleDetector/VehicleDetect"
LINE_CROSSED_TOPIC = "tns1:RuleEngine/LineDetector/Crossed"
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
DEFAULT_SUBSCRIPTION = dt.timedelta(seconds=60)
# ONVIF requires PullMessages to support at least a one-minute Timeout; longer asks are capped.
MAX_PULL_WAIT = dt.timedelta(seconds=120)
MAX_SUBSCRIPTIONS = 32
_QUEUE_LIMIT = 256
_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str) -> dt.timedelta | None:
    """Parse the xs:duration subset ONVIF clients send (PnDTnHnMnS); None when unparsable."""
    match = _DURATION.match(value.strip())
    if match is None or value.strip() in {"P", "PT"}:
        return None
    parts = {key: float(number) for key, number in match.groupdict().items() if number}
    return dt.timedelta(**parts)


def parse_termination(value: str | None, camera_now: dt.datetime) -> dt.datetime | None:
    """Turn an InitialTerminationTime/TerminationTime (duration or absolute) into a time."""
    if not value:
        return camera_now + DEFAULT_SUBSCRIPTION
    duration = parse_duration(value)
    if duration is not None:
        return camera_now + duration
    try:
        absolute = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return absolute if absolute.tzinfo else absolute.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Notification:
    """One event as the camera will serialise it."""

    topic: str
    utc_time: dt.datetime
    property_operation: str
    source_name: str
    source_value: str
    data_name: str
    data_value: bool

    def to_xml(self, subscription_url: str) -> str:
        """Serialise as a wsnt:NotificationMessage (the shape Hikvision/Dahua cameras send)."""
        extra_source = ""
        if self.topic == MOTION_TOPIC:
            extra_source = (
                '<tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="analytics_0"/>'
                '<tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/>'
            )
        return (
            "<wsnt:NotificationMessage>"
            f"<wsnt:SubscriptionReference><wsa:Address>{text(subscription_url)}</wsa:Address>"
            "</wsnt:SubscriptionReference>"
            f"<wsnt:Topic Dialect={attr(CONCRETE_SET)}>{text(self.topic)}</wsnt:Topic>"
            "<wsnt:Message>"
            f"<tt:Message UtcTime={attr(xml_datetime(self.utc_time))} "
            f"PropertyOperation={attr(self.property_operation)}>"
            f"<tt:Source><tt:SimpleItem Name={attr(self.source_name)} "
            f"Value={attr(self.source_value)}/>{extra_source}</tt:Source>"
            f"<tt:Data><tt:SimpleItem Name={attr(self.data_name)} "
            f'Value="{str(self.data_value).lower()}"/></tt:Data>'
            "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
        )


def motion_notifications(active: bool, when: dt.datetime, operation: str) -> list[Notification]:
    """The two notifications a camera emits for one motion change."""
    return [
        Notification(
            MOTION_TOPIC,
            when,
            operation,
            "VideoSourceConfigurationToken",
            VIDEO_SOURCE_CONFIG_TOKEN,
            "IsMotion",
            active,
        ),
        Notification(
            MOTION_ALARM_TOPIC, when, operation, "Source", VIDEO_SOURCE_TOKEN, "State", active
        ),
    ]


def detection_notifications(
    topic: str, active: bool, when: dt.datetime, operation: str = "Changed"
) -> list[Notification]:
    """A camera's own detection rule, Reolink style (Source = video source, Data = State)."""
    return [Notification(topic, when, operation, "Source", VIDEO_SOURCE_TOKEN, "State", active)]


@dataclass
class PullPointSubscription:
    """One subscription: its expiry (camera clock) and its bounded queue of notifications."""

    ident: str
    terminates_at: dt.datetime
    queue: deque[Notification] = field(default_factory=lambda: deque(maxlen=_QUEUE_LIMIT))
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, notifications: list[Notification]) -> None:
        """Queue notifications (oldest are dropped when the queue is full) and wake a poller."""
        self.queue.extend(notifications)
        self.wakeup.set()

    async def pull(self, limit: int, wait: float, closing: asyncio.Event) -> list[Notification]:
        """Return up to limit queued notifications, waiting up to wait seconds for the first."""
        if not self.queue and wait > 0:
            self.wakeup.clear()
            waiters = [
                asyncio.ensure_future(self.wakeup.wait()),
                asyncio.ensure_future(closing.wait()),
            ]
            try:
                await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
        taken: list[Notification] = []
        while self.queue and len(taken) < max(limit, 1):
            taken.append(self.queue.popleft())
        return taken


class EventBroker:
    """All live subscriptions of the camera and the current motion state."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, PullPointSubscription] = {}
        self.motion = False
        self.max_lifetime: dt.timedelta | None = None
        """Firmware limit on a subscription's lifetime: longer asks are granted this much."""
        self.refuse_subscriptions = False
        """While set, CreatePullPointSubscription answers a fault (too many subscriptions)."""
        self.advertised = True
        """Whether GetServices/GetCapabilities offer the events service (cameras without it)."""
        self.reboots = 0

    def grant(self, asked: dt.datetime, camera_now: dt.datetime) -> dt.datetime:
        """The termination time granted for an asked one (capped by ``max_lifetime``)."""
        if self.max_lifetime is None:
            return asked
        return min(asked, camera_now + self.max_lifetime)

    def live(self, subscription: PullPointSubscription, camera_now: dt.datetime) -> bool:
        """Whether the subscription still exists (not expired, dropped by a reboot, ended)."""
        return self.get(subscription.ident, camera_now) is subscription

    def reboot(self) -> None:
        """What a reboot does to events: every subscription is forgotten, long polls end."""
        self.reboots += 1
        dropped = list(self.subscriptions.values())
        self.subscriptions.clear()
        self.motion = False
        for subscription in dropped:
            subscription.wakeup.set()

    def create(self, terminates_at: dt.datetime, camera_now: dt.datetime) -> PullPointSubscription:
        """Create a subscription, dropping expired ones and the oldest beyond the limit."""
        for ident, sub in list(self.subscriptions.items()):
            if sub.terminates_at <= camera_now:
                del self.subscriptions[ident]
        while len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            del self.subscriptions[next(iter(self.subscriptions))]
        subscription = PullPointSubscription(secrets.token_hex(8), terminates_at)
        self.subscriptions[subscription.ident] = subscription
        return subscription

    def get(self, ident: str, camera_now: dt.datetime) -> PullPointSubscription | None:
        """Return a live subscription, or None when unknown or expired."""
        subscription = self.subscriptions.get(ident)
        if subscription is None:
            return None
        if subscription.terminates_at <= camera_now:
            del self.subscriptions[ident]
            return None
        return subscription

    def publish(self, notifications: list[Notification]) -> None:
        """Queue notifications for every subscriber."""
        for subscription in self.subscriptions.values():
            subscription.push(notifications)

    def publish_detection(self, topic: str, active: bool, camera_now: dt.datetime) -> None:
        """One of the camera's own detection rules changed (e.g. PERSON_TOPIC)."""
        self.publish(detection_notifications(topic, active, camera_now))

    def publish_motion(self, active: bool, camera_now: dt.datetime) -> None:
        """Record the motion state and queue a Changed notification for every subscriber."""
        self.motion = active
        for subscription in self.subscriptions.values():
            subscription.push(motion_notifications(active, camera_now, "Changed"))


class MotionSchedule:
    """Motion on during fixed windows of a repeating period, e.g. ((20, 70),) of 100 s."""

    def __init__(
        self, windows: Sequence[tuple[float, float]], period: float, clock: Clock, started: float
    ) -> None:
        self.windows = tuple(windows)
        self.period = period
        self.clock = clock
        self.started = started

    def __call__(self) -> bool:
        """Whether motion is on now."""
        position = (self.clock() - self.started) % self.period
        return any(start <= position < end for start, end in self.windows)


def scene_motion(scene: Scene) -> Callable[[], bool]:
    """Motion while the scene shows somebody (the demo: a person from 20 s to 70 s)."""
    return lambda: scene.current().people > 0


async def follow_motion(
    set_motion: Callable[[bool], None], active: Callable[[], bool], every: float = 0.25
) -> None:
    """Publish a motion change whenever ``active()`` changes (checked every ``every`` s)."""
    state: bool | None = None
    while True:
        now = active()
        if now != state:
            state = now
            set_motion(now)
        await asyncio.sleep(every)


def event_properties() -> str:
    """GetEventProperties: the two motion topics this camera can raise."""

    def description(source: str, source_type: str, data: str) -> str:
        return (
            '<tt:MessageDescription IsProperty="true">'
            f'<tt:Source><tt:SimpleItemDescription Name="{source}" Type="{source_type}"/>'
            "</tt:Source>"
            f'<tt:Data><tt:SimpleItemDescription Name="{data}" Type="xs:boolean"/></tt:Data>'
            "</tt:MessageDescription>"
        )

    return (
        "<tev:GetEventPropertiesResponse>"
        "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml"
        "</tev:TopicNamespaceLocation>"
        "<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet>"
        "<wstop:TopicSet>"
        '<tns1:RuleEngine wstop:topic="false"><CellMotionDetector wstop:topic="false">'
        '<Motion wstop:topic="true">'
        + description("VideoSourceConfigurationToken", "tt:ReferenceToken", "IsMotion")
        + "</Motion></CellMotionDetector></tns1:RuleEngine>"
        '<tns1:VideoSource wstop:topic="false"><MotionAlarm wstop:topic="true">'
        + description("Source", "tt:ReferenceToken", "State")
        + "</MotionAlarm></tns1:VideoSource>"
        "</wstop:TopicSet>"
        f"<wsnt:TopicExpressionDialect>{CONCRETE_SET}</wsnt:TopicExpressionDialect>"
        "<wsnt:TopicExpressionDialect>http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
        "</wsnt:TopicExpressionDialect>"
        "<tev:MessageContentFilterDialect>"
        "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
        "</tev:MessageContentFilterDialect>"
        "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd"
        "</tev:MessageContentSchemaLocation>"
        "</tev:GetEventPropertiesResponse>"
    )


def subscription_created(url: str, camera_now: dt.datetime, terminates_at: dt.datetime) -> str:
    """CreatePullPointSubscriptionResponse."""
    return (
        "<tev:CreatePullPointSubscriptionResponse>"
        f"<tev:SubscriptionReference><wsa:Address>{text(url)}</wsa:Address>"
        "</tev:SubscriptionReference>"
        f"<wsnt:CurrentTime>{xml_datetime(camera_now)}</wsnt:CurrentTime>"
        f"<wsnt:TerminationTime>{xml_datetime(terminates_at)}</wsnt:TerminationTime>"
        "</tev:CreatePullPointSubscriptionResponse>"
    )


def pulled(
    url: str, camera_now: dt.datetime, sub: PullPointSubscription, msgs: list[Notification]
) -> str:
    """PullMessagesResponse."""
    return (
        "<tev:PullMessagesResponse>"
        f"<tev:CurrentTime>{xml_datetime(camera_now)}</tev:CurrentTime>"
        f"<tev:TerminationTime>{xml_datetime(sub.terminates_at)}</tev:TerminationTime>"
        + "".join(message.to_xml(url) for message in msgs)
        + "</tev:PullMessagesResponse>"
    )


def renewed(camera_now: dt.datetime, terminates_at: dt.datetime) -> str:
    """wsnt:RenewResponse."""
    return (
        "<wsnt:RenewResponse>"
        f"<wsnt:TerminationTime>{xml_datetime(terminates_at)}</wsnt:TerminationTime>"
        f"<wsnt:CurrentTime>{xml_datetime(camera_now)}</wsnt:CurrentTime>"
        "</wsnt:RenewResponse>"
    )
