"""A camera's ONVIF events inside Home Assistant: the PullPoint stream's task and what it reports.

``CameraEvents`` runs the camera's ``PullPointStream`` (onvif/events.py) as a background task of
the entry, keeps the states of what the camera reports (motion, and its own person / vehicle /
animal / line-crossing / intrusion detections) and tells its listeners when they change: the
event binary sensors, and the detection loop, whose frame rate follows motion. While no
subscription is live (the camera is rebooting, refuses, or its events fail) every state is
unknown: the sensors are unavailable and detection runs at its steady rate. The task is stopped,
and the subscription ended with Unsubscribe, only when the entry unloads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
import logging
import time
from typing import TYPE_CHECKING

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from .const import DOMAIN
from .onvif import CameraInfo, OnvifCamera
from .onvif.events import (
    TOPIC_KINDS,
    CameraEvent,
    EventKind,
    EventStates,
    PullPointStream,
    StreamState,
)

if TYPE_CHECKING:
    from .data import HsiConfigEntry

_LOGGER = logging.getLogger(__name__)


class CameraEvents:
    """One camera's event subscription and the states of what it reports."""

    def __init__(
        self, hass: HomeAssistant, entry: HsiConfigEntry, camera: OnvifCamera, info: CameraInfo
    ) -> None:
        """Prepare the stream; it starts with ``async_start``."""
        self.hass = hass
        self.entry = entry
        self.states = EventStates()
        self.stream = PullPointStream(
            lambda: camera.events_device,
            camera.host,
            camera.port,
            info.identity.unique_id,
            self._async_on_events,
            on_state=self._async_on_state,
            camera_addresses=lambda: camera.camera_addresses,
        )
        self._listeners: list[CALLBACK_TYPE] = []
        self._task: asyncio.Task[None] | None = None
        self._pulse_unsub: CALLBACK_TYPE | None = None
        self._unsub_stop: CALLBACK_TYPE | None = None
        self._stopping: asyncio.Task[None] | None = None

    @callback
    def async_start(self) -> None:
        """Start subscribing in the background (the camera may be slow to answer)."""
        if self.hass.is_stopping:
            return  # a setup finishing while Home Assistant stops: nothing would end the task
        # A plain task, not a Home Assistant background task: it runs for the entry's whole life,
        # and "wait for background tasks" (tests, and anything else that settles the loop) would
        # wait for it forever. So it is ended here, at unload, and when Home Assistant stops.
        self._task = self.hass.loop.create_task(
            self.stream.run(), name=f"{DOMAIN}_events_{self.entry.entry_id}"
        )
        self._unsub_stop = self.hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STOP, self._async_on_hass_stop
        )

    async def _async_on_hass_stop(self, _event: Event) -> None:
        self._unsub_stop = None
        await self.async_stop()

    async def async_stop(self) -> None:
        """Stop the stream and end its subscription; nothing of it keeps running.

        Unload and Home Assistant's stop may both ask at once: they share one stop.
        """
        if self._stopping is None:
            self._stopping = self.hass.loop.create_task(self._async_stop())
        await asyncio.shield(self._stopping)

    async def _async_stop(self) -> None:
        self._async_cancel_pulse_timer()
        if self._unsub_stop is not None:
            self._unsub_stop()
            self._unsub_stop = None
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if (current := asyncio.current_task()) is not None and current.cancelling():
                    raise
        await self.stream.async_close()
        self._listeners.clear()

    @property
    def available(self) -> bool:
        """Whether a subscription is live, so the states are known."""
        return self.stream.subscribed

    @property
    def motion(self) -> bool | None:
        """Whether the camera reports motion now; None while its events are not known."""
        return self.states.active(EventKind.MOTION) if self.available else None

    def active(self, kind: EventKind) -> bool:
        """Whether the camera reports ``kind`` now."""
        return self.states.active(kind)

    def reported_kinds(self) -> set[EventKind]:
        """Kinds the camera reports: motion, those its event properties declare, those seen."""
        declared = {TOPIC_KINDS[t] for t in self.stream.status.declared_topics if t in TOPIC_KINDS}
        return {EventKind.MOTION, *declared, *self.states.kinds_seen}

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> Callable[[], None]:
        """Call ``listener`` whenever a state or the availability changes."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    @callback
    def _async_notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    @callback
    def _async_on_events(self, events: list[CameraEvent]) -> None:
        self.states.apply(events)
        self._async_schedule_pulse_end()
        # Every batch notifies: a first event of a kind may add an entity even when off.
        self._async_notify()

    @callback
    def _async_on_state(self, state: StreamState) -> None:
        if state is not StreamState.SUBSCRIBED:
            # Whatever was on may have ended while nobody listened: states are unknown now.
            self.states.reset()
            self._async_cancel_pulse_timer()
        _LOGGER.debug("%s: events %s", self.entry.title, state)
        self._async_notify()

    @callback
    def _async_schedule_pulse_end(self) -> None:
        self._async_cancel_pulse_timer()
        end = self.states.next_pulse_end()
        if end is not None:
            delay = max(0.0, end - time.monotonic())

            @callback
            def ended(_now: datetime) -> None:
                self._pulse_unsub = None
                self.states.expire_pulses(end)
                self._async_notify()
                self._async_schedule_pulse_end()

            self._pulse_unsub = async_call_later(self.hass, delay, ended)

    @callback
    def _async_cancel_pulse_timer(self) -> None:
        if self._pulse_unsub is not None:
            self._pulse_unsub()
            self._pulse_unsub = None
