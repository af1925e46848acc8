"""Dynamic micro-batching: requests from many cameras share one forward pass in a dedicated thread.

The event loop only enqueues and awaits; the inference thread runs the engine once per batch.
Dispatch is work-conserving: an idle engine takes whatever waits (up to `max_batch_size`) at once,
so one camera never waits for company; images arriving while a forward pass runs accumulate and
form the next batch. Only when the engine is under load (images arrived during the last pass) may
it wait up to `max_wait` seconds to top a short batch up, which on a GPU turns a stream of many
cameras into full batches. A cancelled request (timeout, client gone) is removed from the queue,
or skipped if already taken; a full queue is refused at once.

An image may also be handed over undecoded with its decoder (`submit_prepared`): a pool thread
decodes it and queues it itself, so the event loop hears back once per image (the detections),
not also in between (the decoded pixels); each hand-off between threads is a wake-up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
import contextlib
from dataclasses import dataclass, field
import logging
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from hsi_detector.engines.base import Detection, Engine

_LOGGER = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The queue has no room for the request; answer 503 with Retry-After."""


class BatcherStoppedError(RuntimeError):
    """The server is shutting down."""


class InferenceError(RuntimeError):
    """The engine failed on the batch this request was part of."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """Detections for one image and where its time went."""

    detections: list[Detection]
    queue_ms: float
    inference_ms: float
    batch_size: int
    prepared: object = None
    """What the image's preparation handed back beside the pixels (`submit_prepared`)."""


type Preparation = Callable[[], tuple[npt.NDArray[np.uint8], object]]
"""Makes an image's pixels in a pool thread: (pixels, anything to hand back with the outcome);
what it raises is its request's answer."""


@dataclass(eq=False, slots=True)
class _Item:
    pixels: npt.NDArray[np.uint8]
    min_confidence: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[BatchOutcome]
    enqueued: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    prepared: object = None


def _resolve(item: _Item, outcome: BatchOutcome | BaseException) -> None:
    if item.future.done():
        return
    if isinstance(outcome, BaseException):
        item.future.set_exception(outcome)
    else:
        item.future.set_result(outcome)


def _cancelled(item: _Item) -> bool:
    return item.cancelled


def _deliver(item: _Item, outcome: BatchOutcome | BaseException) -> None:
    # RuntimeError: the request's event loop is closed, nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        item.loop.call_soon_threadsafe(_resolve, item, outcome)


type BatchObserver = Callable[[int, float], None]

_NO_PIXELS: npt.NDArray[np.uint8] = np.zeros((0, 0, 3), np.uint8)
"""An image's pixels before its preparation made them."""


class MicroBatcher:
    """Owns the queue and the inference thread."""

    def __init__(
        self,
        engine: Engine,
        max_batch_size: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: BatchObserver | None = None,
        workers: int = 1,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch_size
        self._max_wait = max_wait_s
        self._max_queue = max_queue
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        # Set after each pass when images arrived during it: the load that makes a top-up pay.
        self._busy = False
        # One inference thread per pass the engine can run at once (`Engine.streams`).
        self._threads = [
            threading.Thread(target=self._run, name=f"hsi-inference-{n}", daemon=True)
            for n in range(max(1, workers))
        ]

    @property
    def max_batch_size(self) -> int:
        """The most images one forward pass takes."""
        return self._max_batch

    @property
    def depth(self) -> int:
        """Images waiting for a batch."""
        return len(self._queue)

    def start(self) -> None:
        """Start the inference threads."""
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in progress, refuse what still waits, end the thread."""
        with self._cond:
            self._stopping = True
            waiting = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for item in waiting:
            _deliver(item, BatcherStoppedError("shutting down"))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    async def submit(self, pixels: npt.NDArray[np.uint8], min_confidence: float) -> BatchOutcome:
        """Detect objects in one image."""
        return (await self.submit_many([pixels], min_confidence))[0]

    async def submit_many(
        self, images: list[npt.NDArray[np.uint8]], min_confidence: float
    ) -> list[BatchOutcome]:
        """Detect objects in several images (enqueued at once, so they tend to share a batch)."""
        loop = asyncio.get_running_loop()
        items = [_Item(px, min_confidence, loop, loop.create_future()) for px in images]
        with self._cond:
            if (refused := self._refusal(len(items))) is not None:
                raise refused
            self._queue.extend(items)
            self._cond.notify()
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        except BaseException:
            self._drop(items)
            raise

    async def submit_prepared(
        self, pool: Executor, prepare: Preparation, min_confidence: float
    ) -> BatchOutcome:
        """Detect objects in the image `prepare` makes in `pool`, which queues it from there (see
        the module's docstring); raises what `prepare` raises, or QueueFullError / stopped."""
        loop = asyncio.get_running_loop()
        item = _Item(_NO_PIXELS, min_confidence, loop, loop.create_future())
        pool.submit(self._prepare_and_queue, item, prepare)
        try:
            return await item.future
        except BaseException:
            self._drop([item])
            raise

    def _prepare_and_queue(self, item: _Item, prepare: Preparation) -> None:
        """In a pool thread: make the pixels, then queue the image (or answer why not)."""
        if item.cancelled:
            return
        try:
            item.pixels, item.prepared = prepare()
        # Whatever the preparation raises is that request's answer (ImageRejectedError mostly).
        except Exception as err:  # noqa: BLE001
            _deliver(item, err)
            return
        with self._cond:
            if _cancelled(item):  # meanwhile, by the event loop (`_drop`)
                return
            if (failure := self._refusal(1)) is None:
                item.enqueued = time.perf_counter()
                self._queue.append(item)
                self._cond.notify()
                return
        _deliver(item, failure)

    def _refusal(self, count: int) -> Exception | None:
        """Why `count` more images cannot be queued now, or None (with the lock held)."""
        if self._stopping:
            return BatcherStoppedError("shutting down")
        if len(self._queue) + count > self._max_queue:
            return QueueFullError(f"queue full ({self._max_queue} images waiting)")
        return None

    def _drop(self, items: list[_Item]) -> None:
        """Forget a cancelled or failed request's images: no queue room, no model time."""
        with self._cond:
            for item in items:
                item.cancelled = True
                if not item.future.done():
                    item.future.cancel()
                # ValueError: already taken by the inference thread, which skips cancelled items.
                with contextlib.suppress(ValueError):
                    self._queue.remove(item)

    def _take_batch(self) -> list[_Item] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._busy:
                self._top_up()
            if self._stopping:
                return None
            count = min(len(self._queue), self._max_batch)
            return [self._queue.popleft() for _ in range(count)]

    def _top_up(self) -> None:
        """Under load, wait up to max_wait for a short batch to fill (wait releases the lock)."""
        deadline = time.monotonic() + self._max_wait
        while len(self._queue) < self._max_batch and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            live = [item for item in batch if not item.cancelled]
            if live:
                self._infer(live)
            else:
                self._note_load()

    def _note_load(self) -> None:
        """Remember whether images arrived during the pass that just ended.

        Called before the pass's answers are delivered: a client that sends its next image as soon
        as it has its answer is one camera, not load, and must not wait for a top-up.
        """
        with self._cond:
            self._busy = bool(self._queue)

    def _fail(self, batch: list[_Item], failure: str) -> None:
        _LOGGER.error("inference failed for a batch of %d: %s", len(batch), failure)
        for item in batch:
            _deliver(item, InferenceError("inference failed"))

    def _infer(self, batch: list[_Item]) -> None:
        start = time.perf_counter()
        floor = min(item.min_confidence for item in batch)
        try:
            results = self._engine.infer([item.pixels for item in batch], floor)
        # Any engine failure must answer the requests waiting on it rather than end the thread.
        except Exception as err:  # noqa: BLE001
            self._note_load()
            self._fail(batch, type(err).__name__)
            return
        done = time.perf_counter()
        self._note_load()
        inference_ms = (done - start) * 1000
        if self._on_batch is not None:
            self._on_batch(len(batch), done - start)
        for item, found in zip(batch, results, strict=True):
            outcome = BatchOutcome(
                detections=[d for d in found if d.confidence >= item.min_confidence],
                queue_ms=(start - item.enqueued) * 1000,
                inference_ms=inference_ms,
                batch_size=len(batch),
                prepared=item.prepared,
            )
            _deliver(item, outcome)
