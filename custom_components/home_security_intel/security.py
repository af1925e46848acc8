"""A camera's security layer inside Home Assistant: risk each frame, security events, alerts, AI.

`SecurityMonitor` follows the camera's `DetectionCoordinator`: on every new frame it reads the
home's context (``sun.sun``, ``zone.home``, the optional alarm panel), scores the counted objects
with the rules (intelligence/risk.py), feeds the event grouping (intelligence/grouping.py) and
tells its entities. Event changes go to one worker per camera through a bounded queue: it saves
the best frame (annotated off the loop) through the `EventRecorder`, then announces the change
(the event entity fires with the snapshot's media-source id). Detection never waits for it.

AI enrichment (optional): an event that passes the user's filter is sent once to the chosen AI
Task entity with ``ai_task.generate_data`` (structured answer, the annotated snapshot attached)
in a background task, one at a time per camera, bounded by the rate limit and daily cap
(intelligence/ai.py). A verdict refines the event ("updated"); a failure, timeout or malformed
answer is counted and the rules score stands.

Persistence goes through `EventRecorder` only, on the shared store (store/, `HsiStore`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
import probatio

from .const import (
    CONF_AI_DAILY_CAP,
    CONF_AI_GROUPS,
    CONF_AI_INTERVAL,
    CONF_AI_MIN_AREA,
    CONF_AI_MIN_LEVEL,
    CONF_AI_TASK,
    CONF_ALARM_PANEL,
    CONF_ALERT_LEVEL,
    CONF_EVENT_IDLE,
    CONF_EVENT_MAX,
    CONF_RETENTION_DAYS,
    DEFAULT_AI_DAILY_CAP,
    DEFAULT_AI_GROUPS,
    DEFAULT_AI_INTERVAL_S,
    DEFAULT_AI_MIN_AREA,
    DEFAULT_AI_MIN_LEVEL,
    DEFAULT_ALERT_LEVEL,
    DEFAULT_EVENT_IDLE_S,
    DEFAULT_EVENT_MAX_S,
    DEFAULT_RETENTION_DAYS,
    DOMAIN,
    SIGNAL_ALERT_CHANGED,
)
from .detection.model import GROUP_PERSON, GROUPS
from .intelligence.ai import AiBudget, AiFilter, InvalidVerdictError, instructions, parse_verdict
from .intelligence.grouping import (
    CHANGE_ENDED,
    CHANGE_UPDATED,
    EventChange,
    EventGrouper,
    GroupingConfig,
    close_interrupted,
)
from .intelligence.model import (
    NO_RISK,
    RISK_LEVELS,
    SEVERITY_ALERT,
    RiskAssessment,
    RiskLevel,
    SecurityEvent,
)
from .intelligence.risk import RiskContext, VisitLog, assess, render_reason
from .pipeline.draw import AnnotatedBox, annotate
from .pipeline.state import EVENT_DETECTED, FrameOutcome

if TYPE_CHECKING:
    from .data import HsiConfigEntry
    from .detection_coordinator import DetectionCoordinator

_LOGGER = logging.getLogger(__name__)

AI_TIMEOUT_S = 60.0
"""How long one AI call may take before the rules score is kept."""
QUEUE_SIZE = 64
"""Event changes waiting for the recorder, per camera; beyond that a change is dropped (logged)."""
RECENT_EVENTS = 50
"""Events each camera remembers in memory (for refinement after they closed, analyze_event)."""
AI_SENT_KEPT = 500
"""Events remembered as sent to the AI (an event is sent once; the memory stays bounded)."""
REASONS_PREFIX = f"component.{DOMAIN}.entity.sensor.risk_level.state_attributes.reasons.state."

AI_STRUCTURE = probatio.Schema(
    {
        probatio.Required("risk_score"): NumberSelector(
            NumberSelectorConfig(min=0, max=100, step=1)
        ),
        probatio.Required("level"): SelectSelector(SelectSelectorConfig(options=list(RISK_LEVELS))),
        probatio.Required("title"): TextSelector(),
        probatio.Required("summary"): TextSelector(TextSelectorConfig(multiline=True)),
        probatio.Optional("reasoning"): TextSelector(TextSelectorConfig(multiline=True)),
    }
)
"""The structured answer asked of the AI Task entity."""

type ChangeListener = Callable[[str, SecurityEvent, str | None], None]
"""(kind: started / updated / ended, the event, its snapshot's media-source id or None)."""


# --- persistence -----------------------------------------------------------------------------


class EventPageLike(Protocol):
    """A page of `EventDatabase.async_query` (store/database.py)."""

    @property
    def events(self) -> tuple[SecurityEvent, ...]:
        """Newest first."""


class EventDatabaseLike(Protocol):
    """The part of `EventDatabase` (store/database.py) the security layer reads."""

    async def async_get(self, event_id: str) -> SecurityEvent | None:
        """One event by id."""

    async def async_query(self, *, camera_id: str | None = None, limit: int = 50) -> EventPageLike:
        """A camera's newest events."""


class HsiStoreLike(Protocol):
    """The shared store's API (store/__init__.py `HsiStore`) as the security layer uses it."""

    @property
    def events(self) -> EventDatabaseLike:
        """The event database."""

    async def async_record(
        self, event: SecurityEvent, frame: bytes | None = None, annotated: bytes | None = None
    ) -> SecurityEvent:
        """Upsert the event (and save its best frame); never raises for disk errors."""

    def snapshot_media_id(self, event: SecurityEvent, annotated: bool = True) -> str:
        """The media-source id of the event's snapshot."""


class EventRecorder:
    """Where a camera's security events are kept: the one place that talks to the store.

    Without a store (`store` None) events still reach the entities; nothing is persisted and
    no snapshot exists.
    """

    def __init__(self, store: HsiStoreLike | None) -> None:
        """Record into `store`."""
        self.store = store

    async def async_record(
        self, event: SecurityEvent, frame: bytes | None = None, annotated: bytes | None = None
    ) -> SecurityEvent:
        """Keep the event (and its best frame); the event as stored (has_snapshot set)."""
        if self.store is None:
            return event
        return await self.store.async_record(event, frame, annotated)

    def snapshot_media_id(self, event: SecurityEvent) -> str | None:
        """The annotated snapshot's media-source id, when the event has one."""
        if self.store is None or not event.has_snapshot:
            return None
        return self.store.snapshot_media_id(event, annotated=True)

    async def async_get(self, event_id: str) -> SecurityEvent | None:
        """A stored event by id."""
        if self.store is None:
            return None
        return await self.store.events.async_get(event_id)

    async def async_open_events(self, camera_id: str) -> list[SecurityEvent]:
        """Events of a camera still open in the store (the process stopped during them)."""
        if self.store is None:
            return []
        page = await self.store.events.async_query(camera_id=camera_id, limit=5)
        return [event for event in page.events if event.is_open]


async def async_acquire_recorder(hass: HomeAssistant) -> EventRecorder:
    """A recorder on the shared store (released with `async_release_recorder`).

    The shared store (store/, `async_acquire_store`) is wired here: this is the only place.
    """
    from .store import async_acquire_store

    return EventRecorder(await async_acquire_store(hass))


async def async_release_recorder(hass: HomeAssistant, recorder: EventRecorder) -> None:
    """Give the shared store back (it closes when its last holder releases it)."""
    if recorder.store is None:
        return
    recorder.store = None
    from .store import async_release_store

    await async_release_store(hass)


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """A camera's security options, with defaults filled in."""

    grouping: GroupingConfig
    alarm_panel: str | None = None
    ai_task: str | None = None
    ai_filter: AiFilter = field(default_factory=AiFilter)
    ai_interval_s: float = DEFAULT_AI_INTERVAL_S
    ai_daily_cap: int = DEFAULT_AI_DAILY_CAP

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SecuritySettings:
        """Read the entry's options (validated by the options flow)."""
        alert = _level(options.get(CONF_ALERT_LEVEL), DEFAULT_ALERT_LEVEL)
        return cls(
            grouping=GroupingConfig(
                idle_s=float(options.get(CONF_EVENT_IDLE, DEFAULT_EVENT_IDLE_S)),
                max_s=float(options.get(CONF_EVENT_MAX, DEFAULT_EVENT_MAX_S)),
                alert_level=alert,
            ),
            alarm_panel=options.get(CONF_ALARM_PANEL) or None,
            ai_task=options.get(CONF_AI_TASK) or None,
            ai_filter=AiFilter(
                min_level=_level(options.get(CONF_AI_MIN_LEVEL), DEFAULT_AI_MIN_LEVEL),
                groups=frozenset(options.get(CONF_AI_GROUPS, DEFAULT_AI_GROUPS)),
                min_area=float(options.get(CONF_AI_MIN_AREA, DEFAULT_AI_MIN_AREA)),
            ),
            ai_interval_s=float(options.get(CONF_AI_INTERVAL, DEFAULT_AI_INTERVAL_S)),
            ai_daily_cap=int(options.get(CONF_AI_DAILY_CAP, DEFAULT_AI_DAILY_CAP)),
        )


def _level(value: Any, default: str) -> RiskLevel:
    """A stored level, or the default for anything that is none."""
    for level in RISK_LEVELS:
        if level == value:
            return level
    return next(level for level in RISK_LEVELS if level == default)


# --- the monitor -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Work:
    change: EventChange | None
    """None: an AI-refined event to record and announce (`refined`)."""
    refined: SecurityEvent | None = None
    frame: bytes | None = None
    boxes: tuple[AnnotatedBox, ...] = ()


class AiUnavailableError(HomeAssistantError):
    """The AI enrichment could not run (translated; for the analyze_event service)."""


class SecurityMonitor:
    """One camera's risk, security events, alert state and AI enrichment."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HsiConfigEntry,
        detection: DetectionCoordinator,
        settings: SecuritySettings,
    ) -> None:
        """Prepare; `async_start` begins following the detection loop."""
        self.hass = hass
        self.entry = entry
        self.detection = detection
        self.settings = settings
        self.risk: RiskAssessment = NO_RISK
        self.budget = AiBudget(settings.ai_interval_s, settings.ai_daily_cap)
        self.recorder = EventRecorder(None)
        self.grouper = EventGrouper(
            entry.entry_id, entry.title, settings.grouping, describe=self._describe
        )
        self._templates: dict[str, str] = {}
        self._visits = VisitLog()
        self._listeners: list[CALLBACK_TYPE] = []
        self._change_listeners: list[ChangeListener] = []
        self._unsubs: list[CALLBACK_TYPE] = []
        self._timer: CALLBACK_TYPE | None = None
        self._pending: deque[_Work] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._ai_task: asyncio.Task[Any] | None = None
        self._ai_sent: dict[str, None] = {}
        """Events already sent (insertion order: the oldest are forgotten first)."""
        self._areas: dict[str, float] = {}
        self._recent: OrderedDict[str, SecurityEvent] = OrderedDict()
        self._last_outcome: FrameOutcome | None = None
        self._alert = False

    # --- life cycle ------------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Load translations, close events a previous run left open, follow the frames."""
        self.recorder = await async_acquire_recorder(self.hass)
        translations = await async_get_translations(
            self.hass, self.hass.config.language, "entity", [DOMAIN]
        )
        self._templates = {
            key.removeprefix(REASONS_PREFIX): text
            for key, text in translations.items()
            if key.startswith(REASONS_PREFIX)
        }
        for stale in await self.recorder.async_open_events(self.entry.entry_id):
            closed = close_interrupted(stale)
            _LOGGER.debug("%s: closing event %s left open", self.entry.title, stale.event_id)
            await self.recorder.async_record(closed)
        self._unsubs.append(self.detection.async_add_listener(self._async_on_frame))

    async def async_stop(self) -> None:
        """Close the open event, finish what is queued, release the store."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self._cancel_timer()
        for change in self.grouper.close():
            self._enqueue(_Work(change))
        if self._ai_task is not None:
            self._ai_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._ai_task
        if self._worker is not None:
            await self._worker  # what is queued is still recorded
        self._set_alert(False)
        await async_release_recorder(self.hass, self.recorder)

    # --- what entities read ----------------------------------------------------------------------

    @property
    def event(self) -> SecurityEvent | None:
        """The open security event."""
        return self.grouper.current

    @property
    def alert_active(self) -> bool:
        """An alert is going on at this camera (the open event is an alert)."""
        return self._alert

    def reasons_text(self, risk: RiskAssessment | None = None) -> list[str]:
        """The reasons of an assessment (default: the current one), translated."""
        return [render_reason(r, self._templates) for r in (risk or self.risk).reasons]

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` whenever risk or alert state changed."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def async_add_change_listener(self, listener: ChangeListener) -> CALLBACK_TYPE:
        """Call `listener` with every announced event change (started / updated / ended)."""
        self._change_listeners.append(listener)
        return lambda: self._change_listeners.remove(listener)

    # --- each frame --------------------------------------------------------------------------

    def _context(self, visits: int) -> RiskContext:
        states = self.hass.states
        sun = states.get("sun.sun")
        home = states.get("zone.home")
        anybody: bool | None = None
        if home is not None and home.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            with suppress(ValueError):
                anybody = int(float(home.state)) > 0
        armed: bool | None = None
        if self.settings.alarm_panel and (panel := states.get(self.settings.alarm_panel)):
            if panel.state.startswith("armed") or panel.state == "triggered":
                armed = True
            elif panel.state == "disarmed":
                armed = False
        return RiskContext(
            night=sun is not None and sun.state == "below_horizon",
            anybody_home=anybody,
            alarm_armed=armed,
            visits_last_hour=visits,
        )

    @callback
    def _async_on_frame(self) -> None:
        data = self.detection.data
        outcome = data.outcome
        if outcome is None or outcome is self._last_outcome:
            return  # an occupancy tick or a state-only change: no new frame
        self._last_outcome = outcome
        mono = time.monotonic()
        for event in outcome.events:
            if event.kind == EVENT_DETECTED and event.group == GROUP_PERSON:
                self._visits.add(mono)
        for obj in outcome.objects:
            self._areas[obj.object_id] = max(self._areas.get(obj.object_id, 0.0), obj.box.area)
        self.risk = assess(outcome.objects, self._context(self._visits.count(mono)))
        changes = self.grouper.update(outcome.objects, self.risk, dt_util.utcnow())
        for change in changes:
            best = change.best_frame and data.frame is not None
            self._enqueue(_Work(change, frame=data.frame if best else None, boxes=data.frame_boxes))
        if self.grouper.current is None:
            self._areas.clear()
        self._schedule_timer()
        self._update_alert()
        self._notify()

    @callback
    def _async_on_timer(self, _now: datetime) -> None:
        self._timer = None
        for change in self.grouper.tick(dt_util.utcnow()):
            self._enqueue(_Work(change))
        self._schedule_timer()
        self._update_alert()
        self._notify()

    def _schedule_timer(self) -> None:
        self._cancel_timer()
        if (deadline := self.grouper.deadline()) is not None:
            # Cancelled at shutdown: Home Assistant stops without unloading entries.
            self._timer = async_track_point_in_utc_time(
                self.hass, HassJob(self._async_on_timer, cancel_on_shutdown=True), deadline
            )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None

    def _update_alert(self) -> None:
        current = self.grouper.current
        self._set_alert(current is not None and current.severity == SEVERITY_ALERT)

    def _set_alert(self, alert: bool) -> None:
        if alert != self._alert:
            self._alert = alert
            async_dispatcher_send(self.hass, SIGNAL_ALERT_CHANGED)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    def _describe(self, risk: RiskAssessment) -> tuple[str, str]:
        texts = self.reasons_text(risk)
        if not texts:
            return self.entry.title, ""
        summary = ", ".join(texts)
        return texts[0][:1].upper() + texts[0][1:], summary[:1].upper() + summary[1:]

    # --- recording and announcing (one worker per camera) ---------------------------------------

    def _enqueue(self, work: _Work) -> None:
        if len(self._pending) >= QUEUE_SIZE:
            _LOGGER.warning("%s: security events pile up; one change dropped", self.entry.title)
            return
        self._pending.append(work)
        if self._worker is None or self._worker.done():
            # A worker only while there is work: nothing of this camera runs idle.
            self._worker = self.entry.async_create_background_task(
                self.hass, self._async_drain(), f"{DOMAIN}_security_{self.entry.entry_id}"
            )

    def _merged(self, event: SecurityEvent) -> SecurityEvent:
        """What is known of an event: the newest copy plus its snapshot and AI verdict."""
        known = self._recent.get(event.event_id)
        if known is None:
            return event
        changes: dict[str, Any] = {}
        if known.has_snapshot and not event.has_snapshot:
            changes["has_snapshot"] = True
        if known.ai is not None and event.ai is None:
            refined = self.grouper.refined(event, known.ai)
            changes.update(ai=refined.ai, title=refined.title, summary=refined.summary)
            changes["severity"] = refined.severity
        return event.with_changes(**changes) if changes else event

    def _remember(self, event: SecurityEvent) -> None:
        self._recent[event.event_id] = event
        self._recent.move_to_end(event.event_id)
        while len(self._recent) > RECENT_EVENTS:
            self._recent.popitem(last=False)

    async def _async_drain(self) -> None:
        while self._pending:
            work = self._pending.popleft()
            try:
                await self._async_handle(work)
            except Exception:
                # One bad change must not stop the camera's recording for good.
                _LOGGER.exception("%s: recording a security event failed", self.entry.title)

    async def _async_handle(self, work: _Work) -> None:
        if work.change is None:
            assert work.refined is not None
            kind, event = CHANGE_UPDATED, self._merged(work.refined)
        else:
            kind, event = work.change.kind, self._merged(work.change.event)
        annotated: bytes | None = None
        if work.frame is not None:
            try:
                annotated = await self.hass.async_add_executor_job(
                    annotate, work.frame, list(work.boxes)
                )
            except ValueError as err:
                _LOGGER.debug("%s: cannot draw the event frame: %s", self.entry.title, err)
        stored = await self.recorder.async_record(event, work.frame, annotated)
        self._remember(stored)
        if kind in ("started", CHANGE_UPDATED, CHANGE_ENDED):
            media_id = self.recorder.snapshot_media_id(stored)
            for listener in list(self._change_listeners):
                listener(kind, stored, media_id)
        self._maybe_enrich(stored)

    # --- AI enrichment ---------------------------------------------------------------------------

    def _maybe_enrich(self, event: SecurityEvent) -> None:
        settings = self.settings
        if (
            settings.ai_task is None
            or event.event_id in self._ai_sent
            or event.ai is not None
            or not event.has_snapshot
            or not settings.ai_filter.passes(event, self._areas)
        ):
            return
        # One call in flight per camera; over budget or busy, a later change of the same event
        # (its level rising, its end) may still go.
        if self._ai_task is not None:
            self.budget.skipped += 1
            self._notify()
            return
        if not self.budget.allows(time.monotonic(), dt_util.now().date()):
            self._notify()
            return
        self._ai_sent[event.event_id] = None
        while len(self._ai_sent) > AI_SENT_KEPT:
            del self._ai_sent[next(iter(self._ai_sent))]
        self._ai_task = self.entry.async_create_background_task(
            self.hass, self._async_enrich_in_background(event), f"{DOMAIN}_ai_{event.event_id}"
        )

    async def _async_enrich_in_background(self, event: SecurityEvent) -> None:
        try:
            await self._async_enrich(event)
        except AiUnavailableError:
            pass  # counted and logged in _async_enrich; the rules score stands
        finally:
            self._ai_task = None

    async def async_knows(self, event_id: str) -> bool:
        """Whether the event is one of this camera's (in memory or in the store)."""
        return await self._async_find(event_id) is not None

    async def _async_find(self, event_id: str) -> SecurityEvent | None:
        event = self._recent.get(event_id) or await self.recorder.async_get(event_id)
        return event if event is not None and event.camera_id == self.entry.entry_id else None

    async def async_analyze(self, event_id: str) -> SecurityEvent:
        """Run the AI enrichment of one event now (service): bypasses filter and interval, not
        the daily cap; raises translated errors."""
        event = await self._async_find(event_id)
        if event is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="event_not_found",
                translation_placeholders={"event_id": event_id},
            )
        if self.settings.ai_task is None:
            raise AiUnavailableError(
                translation_domain=DOMAIN,
                translation_key="no_ai_task",
                translation_placeholders={"camera_name": self.entry.title},
            )
        if not self.budget.allows(time.monotonic(), dt_util.now().date(), ignore_interval=True):
            raise AiUnavailableError(
                translation_domain=DOMAIN,
                translation_key="ai_cap_reached",
                translation_placeholders={"camera_name": self.entry.title},
            )
        return await self._async_enrich(self._merged(event))

    async def _async_enrich(self, event: SecurityEvent) -> SecurityEvent:
        assert self.settings.ai_task is not None
        self.budget.spend(time.monotonic(), dt_util.now().date())
        self._notify()
        media_id = self.recorder.snapshot_media_id(event)
        attachments = (
            [{"media_content_id": media_id, "media_content_type": "image/jpeg"}]
            if media_id
            else None
        )
        # Imported here: ai_task pulls in conversation, which only users of the AI need loaded.
        from homeassistant.components import ai_task

        night = self._context(0).night
        try:
            async with asyncio.timeout(AI_TIMEOUT_S):
                result = await ai_task.async_generate_data(
                    self.hass,
                    task_name=f"{DOMAIN} security event",
                    entity_id=self.settings.ai_task,
                    instructions=instructions(event, self.reasons_text(event.risk), night=night),
                    structure=AI_STRUCTURE,
                    attachments=attachments,
                )
            verdict = parse_verdict(result.data)
        except (TimeoutError, HomeAssistantError, InvalidVerdictError) as err:
            reason = (
                "timeout"
                if isinstance(err, TimeoutError)
                else "invalid_answer"
                if isinstance(err, InvalidVerdictError)
                else "error"
            )
            self.budget.failed(reason)
            self._notify()
            _LOGGER.info(
                "%s: AI enrichment of event %s failed (%s): %s; the rules score stands",
                self.entry.title,
                event.event_id,
                reason,
                err,
            )
            raise AiUnavailableError(
                translation_domain=DOMAIN,
                translation_key="ai_failed",
                translation_placeholders={"camera_name": self.entry.title, "error": reason},
            ) from err
        self.budget.last_error = None
        refined = self.grouper.apply_verdict(event.event_id, verdict)
        if refined is None:
            refined = self.grouper.refined(event, verdict)
        else:
            self._update_alert()
        refined = self._merged(refined)
        self._remember(refined)
        self._enqueue(_Work(None, refined=refined))
        self._notify()
        return refined


# --- options (the options flow's `security` section) ---------------------------------------

SECURITY_FIELDS: tuple[str, ...] = (
    CONF_ALERT_LEVEL,
    CONF_EVENT_IDLE,
    CONF_EVENT_MAX,
    CONF_ALARM_PANEL,
    CONF_AI_TASK,
    CONF_AI_MIN_LEVEL,
    CONF_AI_GROUPS,
    CONF_AI_MIN_AREA,
    CONF_AI_INTERVAL,
    CONF_AI_DAILY_CAP,
    CONF_RETENTION_DAYS,
)
"""The section's fields, as stored (flat) in the camera entry's options."""
OPTIONAL_ENTITIES: tuple[str, ...] = (CONF_ALARM_PANEL, CONF_AI_TASK)
"""Fields that may be left empty (cleared: stored as None)."""


def _box(minimum: float, maximum: float, step: float, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=minimum, max=maximum, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _levels(key: str) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=list(RISK_LEVELS), mode=SelectSelectorMode.DROPDOWN, translation_key=key
        )
    )


def security_schema() -> probatio.Schema:
    """The options flow's `security` section."""
    return probatio.Schema(
        {
            probatio.Required(CONF_ALERT_LEVEL): _levels("risk_level"),
            probatio.Required(CONF_EVENT_IDLE): _box(5, 600, 1, "s"),
            probatio.Required(CONF_EVENT_MAX): _box(10, 3600, 1, "s"),
            probatio.Optional(CONF_ALARM_PANEL): EntitySelector(
                EntitySelectorConfig(domain="alarm_control_panel")
            ),
            probatio.Optional(CONF_AI_TASK): EntitySelector(EntitySelectorConfig(domain="ai_task")),
            probatio.Required(CONF_AI_MIN_LEVEL): _levels("risk_level"),
            probatio.Required(CONF_AI_GROUPS): SelectSelector(
                SelectSelectorConfig(
                    options=list(GROUPS),
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                    translation_key="groups",
                )
            ),
            probatio.Required(CONF_AI_MIN_AREA): _box(0, 1, 0.001),
            probatio.Required(CONF_AI_INTERVAL): _box(0, 86400, 1, "s"),
            probatio.Required(CONF_AI_DAILY_CAP): _box(0, 10000, 1),
            probatio.Required(CONF_RETENTION_DAYS): _box(1, 3650, 1, "d"),
        }
    )


def security_suggested(options: Mapping[str, Any]) -> dict[str, Any]:
    """The section's values to show: stored ones, defaults for the rest (empty entities left
    out, so the selector shows nothing)."""
    defaults: dict[str, Any] = {
        CONF_ALERT_LEVEL: DEFAULT_ALERT_LEVEL,
        CONF_EVENT_IDLE: DEFAULT_EVENT_IDLE_S,
        CONF_EVENT_MAX: DEFAULT_EVENT_MAX_S,
        CONF_AI_MIN_LEVEL: DEFAULT_AI_MIN_LEVEL,
        CONF_AI_GROUPS: list(DEFAULT_AI_GROUPS),
        CONF_AI_MIN_AREA: DEFAULT_AI_MIN_AREA,
        CONF_AI_INTERVAL: DEFAULT_AI_INTERVAL_S,
        CONF_AI_DAILY_CAP: DEFAULT_AI_DAILY_CAP,
        CONF_RETENTION_DAYS: DEFAULT_RETENTION_DAYS,
    }
    suggested = {key: options.get(key, value) for key, value in defaults.items()}
    suggested.update({key: options[key] for key in OPTIONAL_ENTITIES if options.get(key)})
    return suggested


def security_options(section_input: Mapping[str, Any]) -> dict[str, Any]:
    """The section as stored: numbers as numbers, cleared entities as None."""
    stored = dict(section_input)
    for key in OPTIONAL_ENTITIES:
        stored[key] = stored.get(key) or None
    for key in (CONF_AI_DAILY_CAP, CONF_RETENTION_DAYS):
        if key in stored:
            stored[key] = int(stored[key])
    return stored
