"""The security event history: an SQLite database on one dedicated worker thread.

Home Assistant-free. Every call of `EventDatabase` runs its SQL on a single-thread executor that
owns the connection, so the event loop never waits on the disk and SQLite never sees two threads.
A row holds the event's `SecurityEvent.to_dict` payload (JSON) plus the columns queries filter and
sort on: camera, start, end, level rank, severity and the event's local day.

Schema changes are numbered (``PRAGMA user_version``) and applied one step at a time, so a
database written by any older release upgrades in place. A file that is not a database (or is
damaged) is renamed aside with an error in the log and a fresh one is made: the snapshots and
everything else stay where they are.

Pages are newest first and use keyset paging: the cursor is an opaque token for the last row's
(start, event id), so page 1,000 costs what page 1 costs (no OFFSET).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
import json
import logging
from pathlib import Path
import re
import sqlite3
from typing import Any, Final

from ..intelligence.model import RiskLevel, SecurityEvent, Severity, level_rank

_LOGGER = logging.getLogger(__name__)

DB_FILE: Final = "events.db"
SCHEMA_VERSION: Final = 2
MAX_PAGE: Final = 500
# An event lasts at most the "maximum length" option (minutes, then a new event continues it):
# a time-range query looks this far before its start for events that overlap it, which keeps
# the scan on the start index bounded.
MAX_EVENT_SPAN: Final = timedelta(hours=6)
_CURSOR_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_EVENT_ID_RE: Final = re.compile(r"^[0-9a-f]{32}$")


class StoreError(Exception):
    """The event store cannot do what was asked."""


class InvalidCursorError(StoreError):
    """A paging cursor that this database did not hand out."""


class DatabaseTooNewError(StoreError):
    """The file was written by a newer release (its schema version is unknown here)."""


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of events, newest first; `next_cursor` is None on the last page."""

    events: tuple[SecurityEvent, ...]
    next_cursor: str | None


# --- schema ------------------------------------------------------------------------------------

# Step n brings a database from version n to n + 1. Never edit a released step: add one.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 0 -> 1: the first release: events by camera and start.
    (
        """CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL,
            level INTEGER NOT NULL,
            day TEXT NOT NULL,
            payload TEXT NOT NULL
        )""",
        "CREATE INDEX events_camera_start ON events (camera_id, start_ts, event_id)",
    ),
    # 1 -> 2: severity as a column (alerts only, without reading payloads) and a home-wide
    # time index (the all-cameras calendar and get_events without a camera).
    (
        "ALTER TABLE events ADD COLUMN severity TEXT NOT NULL DEFAULT 'detection'",
        "UPDATE events SET severity = json_extract(payload, '$.severity') "
        "WHERE json_extract(payload, '$.severity') = 'alert'",
        "CREATE INDEX events_start ON events (start_ts, event_id)",
        "CREATE INDEX events_camera_day ON events (camera_id, day)",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """An explicit transaction (the connection runs in autocommit mode otherwise)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to `target` one step at a time, each step in one transaction; returns
    the version found. Raises DatabaseTooNewError for a version this release does not know."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise DatabaseTooNewError(f"schema version {found} is newer than {SCHEMA_VERSION}")
    for version in range(found, target):
        with _transaction(conn):  # one per step: a crash leaves the previous version intact
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        _LOGGER.debug("Event database migrated to schema version %s", version + 1)
    return found


# --- cursors -----------------------------------------------------------------------------------


def _encode_cursor(start_ts: float, event_id: str) -> str:
    raw = json.dumps([start_ts, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (start, event id) a cursor stands for; InvalidCursorError for anything else."""
    if not _CURSOR_RE.match(cursor):
        raise InvalidCursorError("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start_ts, event_id = json.loads(raw)
    except (ValueError, TypeError) as err:
        raise InvalidCursorError("malformed cursor") from err
    if (
        not isinstance(start_ts, float | int)
        or isinstance(start_ts, bool)
        or not isinstance(event_id, str)
        or not _EVENT_ID_RE.match(event_id)
    ):
        raise InvalidCursorError("malformed cursor")
    return float(start_ts), event_id


def is_cursor(cursor: str) -> bool:
    """Whether a string is a well-formed cursor (the media source validates identifiers)."""
    try:
        decode_cursor(cursor)
    except InvalidCursorError:
        return False
    return True


# --- the database ------------------------------------------------------------------------------


class _DamagedError(sqlite3.DatabaseError):
    """SQLite's own check found damaged pages."""


def _check(conn: sqlite3.Connection) -> None:
    check = conn.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise _DamagedError(f"quick_check: {check}")


def _is_damage(err: sqlite3.DatabaseError) -> bool:
    """Whether an error says the file is not a database or is damaged (not merely busy)."""
    return isinstance(err, _DamagedError) or getattr(err, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    )


def _ts(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.timestamp()


class EventDatabase:
    """The event history file, used from the event loop; SQL runs on its own worker thread.

    `tz` is the time zone that days (the media browser's folders) are counted in.
    """

    def __init__(self, path: Path, tz: tzinfo = UTC) -> None:
        """Describe the database; nothing is opened until `async_open`."""
        self.path = path
        self.tz = tz
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # Worker-thread side. ------------------------------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as err:
            if not _is_damage(err):
                raise  # locked, out of space, a failed step: the file itself is fine
            aside = self._set_aside()
            _LOGGER.error(  # noqa: TRY400 - the cause is the message; a traceback adds nothing
                "Event database %s is damaged (%s): renamed to %s, starting a new one; "
                "snapshots are kept",
                self.path,
                err,
                aside.name,
            )
            self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            # Reading the schema and a quick check finds a file that is not a database, or one
            # whose pages are damaged, before any event is written into it.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            _check(conn)
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_aside(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        self.path.replace(aside)
        for suffix in ("-wal", "-shm"):
            sidecar = self.path.with_name(self.path.name + suffix)
            if sidecar.exists():
                sidecar.replace(aside.with_name(aside.name + suffix))
        return aside

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        # Worker functions run only between async_open and async_close (see _run).
        assert self._conn is not None
        return self._conn

    def _upsert_many(self, events: list[SecurityEvent]) -> None:
        with _transaction(self._db):
            for event in events:
                self._upsert(event)

    def _upsert(self, event: SecurityEvent) -> None:
        self._db.execute(
            """INSERT INTO events
                   (event_id, camera_id, start_ts, end_ts, level, severity, day, payload)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (event_id) DO UPDATE SET
                   camera_id = excluded.camera_id, start_ts = excluded.start_ts,
                   end_ts = excluded.end_ts, level = excluded.level,
                   severity = excluded.severity, day = excluded.day, payload = excluded.payload""",
            (
                event.event_id,
                event.camera_id,
                _ts(event.start),
                _ts(event.end) if event.end else None,
                level_rank(event.level),
                event.severity,
                event.start.astimezone(self.tz).date().isoformat(),
                json.dumps(event.to_dict(), separators=(",", ":")),
            ),
        )

    def _get(self, event_id: str) -> SecurityEvent | None:
        row = self._db.execute(
            "SELECT payload FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return SecurityEvent.from_dict(json.loads(row[0])) if row else None

    def _query(
        self,
        camera_id: str | None,
        start: datetime | None,
        end: datetime | None,
        min_level: RiskLevel | None,
        severity: Severity | None,
        day: date | None,
        limit: int,
        cursor: str | None,
    ) -> EventPage:
        where: list[str] = []
        args: list[Any] = []
        # With a cursor, the cursor is the upper bound the index seeks to; other upper bounds
        # are written "+start_ts" so that SQLite only filters with them (the planner would pick
        # one of them and scan down to the cursor).
        below = "+start_ts <" if cursor is not None else "start_ts <"
        if camera_id is not None:
            where.append("camera_id = ?")
            args.append(camera_id)
        if day is not None:
            # The day's bounds keep the scan on the (camera, start) index's range.
            first = datetime.combine(day, time.min, self.tz)
            after = datetime.combine(day + timedelta(days=1), time.min, self.tz)
            where.append(f"start_ts >= ? AND {below} ? AND day = ?")
            args.extend((_ts(first), _ts(after), day.isoformat()))
        if end is not None:
            where.append(f"{below} ?")
            args.append(_ts(end))
        if start is not None:
            # Overlapping the range: still open, or ended after its start. The lower bound on
            # start keeps the index range finite.
            where.append("start_ts >= ? AND (end_ts IS NULL OR end_ts >= ? OR start_ts >= ?)")
            args.extend((_ts(start - MAX_EVENT_SPAN), _ts(start), _ts(start)))
        if min_level is not None:
            where.append("level >= ?")
            args.append(level_rank(min_level))
        if severity is not None:
            where.append("severity = ?")
            args.append(severity)
        if cursor is not None:
            after_ts, after_id = decode_cursor(cursor)
            # A row value: SQLite seeks the index to it (an OR of the parts would scan).
            where.append("(start_ts, event_id) < (?, ?)")
            args.extend((after_ts, after_id))
        sql = "SELECT start_ts, event_id, payload FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_ts DESC, event_id DESC LIMIT ?"
        args.append(limit + 1)  # one more tells whether another page follows
        rows = self._db.execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        events = tuple(SecurityEvent.from_dict(json.loads(payload)) for _, _, payload in rows)
        next_cursor = _encode_cursor(rows[-1][0], rows[-1][1]) if more else None
        return EventPage(events, next_cursor)

    def _days(self, camera_id: str) -> list[tuple[date, int]]:
        rows = self._db.execute(
            "SELECT day, COUNT(*) FROM events WHERE camera_id = ? GROUP BY day ORDER BY day DESC",
            (camera_id,),
        ).fetchall()
        return [(date.fromisoformat(day), count) for day, count in rows]

    def _cameras(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT camera_id FROM events")]

    def _delete(self, where: str, args: tuple[Any, ...]) -> list[tuple[str, str, datetime]]:
        with _transaction(self._db):
            removed = self._db.execute(
                f"DELETE FROM events WHERE {where} RETURNING camera_id, event_id, start_ts",  # noqa: S608 - fixed clauses
                args,
            ).fetchall()
        return [(camera, event, datetime.fromtimestamp(ts, UTC)) for camera, event, ts in removed]

    # Event-loop side. ---------------------------------------------------------------------------

    async def _run[T](self, func: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError("event database is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def async_open(self) -> None:
        """Open (create, migrate, or replace a damaged file) on the worker thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hsi_events_db")
        try:
            await self._run(self._open)
        except BaseException:
            await self.async_close()
            raise

    async def async_close(self) -> None:
        """Close the connection and stop the worker thread."""
        if (executor := self._executor) is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close)
        self._executor = None
        # Wait (off the loop) until the worker thread is gone: nothing outlives the close.
        await loop.run_in_executor(None, executor.shutdown)

    async def async_upsert(self, event: SecurityEvent) -> None:
        """Insert the event, or replace the stored one with the same id."""
        await self._run(self._upsert, event)

    async def async_upsert_many(self, events: Iterable[SecurityEvent]) -> None:
        """`async_upsert` for many events in one transaction (imports, tests, benchmarks)."""
        await self._run(self._upsert_many, list(events))

    async def async_get(self, event_id: str) -> SecurityEvent | None:
        """The stored event with this id."""
        return await self._run(self._get, event_id)

    async def async_query(
        self,
        *,
        camera_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        min_level: RiskLevel | None = None,
        severity: Severity | None = None,
        limit: int = 50,
        cursor: str | None = None,
        day: date | None = None,
    ) -> EventPage:
        """One page of events, newest first.

        `start`/`end` select the events that overlap [start, end) (an open event lasts until
        now); `day` the events that started on that local day; `cursor` continues a previous
        page with the same filters (InvalidCursorError when it is not one of ours).
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}")
        return await self._run(
            self._query, camera_id, start, end, min_level, severity, day, limit, cursor
        )

    async def async_days(self, camera_id: str) -> list[tuple[date, int]]:
        """The local days with events of a camera and how many, newest first."""
        return await self._run(self._days, camera_id)

    async def async_cameras(self) -> list[str]:
        """Every camera id with stored events."""
        return await self._run(self._cameras)

    async def async_purge(
        self, before: datetime, *, camera_id: str | None = None
    ) -> list[tuple[str, str]]:
        """Delete the events (of one camera, or all) that ended before `before`; returns the
        (camera id, event id) of each one removed."""
        removed = await self.async_purge_events(before, camera_id=camera_id)
        return [(camera, event) for camera, event, _ in removed]

    async def async_purge_events(
        self, before: datetime, *, camera_id: str | None = None
    ) -> list[tuple[str, str, datetime]]:
        """`async_purge` answering (camera id, event id, start): the snapshots' folders are
        named by the start."""
        cutoff = _ts(before)
        if camera_id is None:
            return await self._run(
                self._delete, "COALESCE(end_ts, start_ts) < ? AND start_ts < ?", (cutoff, cutoff)
            )
        return await self._run(
            self._delete,
            "camera_id = ? AND start_ts < ? AND COALESCE(end_ts, start_ts) < ?",
            (camera_id, cutoff, cutoff),
        )

    async def async_delete_camera(self, camera_id: str) -> list[tuple[str, str, datetime]]:
        """Delete every event of a camera (its entry was removed)."""
        return await self._run(self._delete, "camera_id = ?", (camera_id,))
