"""The event database on its own (no Home Assistant): schema, migrations, paging, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
import json
import logging
from pathlib import Path
import sqlite3
import threading

import pytest

from custom_components.home_security_intel.store.database import (
    _MIGRATIONS,
    DB_FILE,
    SCHEMA_VERSION,
    DatabaseTooNewError,
    EventDatabase,
    InvalidCursorError,
    StoreError,
    _encode_cursor,
    decode_cursor,
    is_cursor,
    migrate,
)
from tests.store.common import CAMERA, OTHER, T0, make_event


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[EventDatabase]:
    """An opened database in a temporary folder."""
    database = EventDatabase(tmp_path / "store" / DB_FILE)
    await database.async_open()
    yield database
    await database.async_close()


async def test_round_trip_and_upsert(db: EventDatabase) -> None:
    """A stored event reads back equal; storing the same id again replaces it."""
    event = make_event()
    await db.async_upsert(event)
    assert await db.async_get(event.event_id) == event
    ended = event.with_changes(summary="Left again.", risk=event.risk.__class__(90))
    await db.async_upsert(ended)
    assert await db.async_get(event.event_id) == ended
    page = await db.async_query()
    assert page.events == (ended,)
    assert page.next_cursor is None
    assert await db.async_get("f" * 32) is None


async def test_sql_runs_on_one_worker_thread_without_offset(db: EventDatabase) -> None:
    """Every statement runs on the database's own thread; paging never uses OFFSET and walks
    the camera index."""
    seen: list[tuple[int, str]] = []

    def trace() -> None:
        assert db._conn is not None
        db._conn.set_trace_callback(lambda sql: seen.append((threading.get_ident(), sql)))

    await db._run(trace)
    for i in range(5):
        await db.async_upsert(make_event(T0 + timedelta(minutes=i)))
    page = await db.async_query(camera_id=CAMERA, limit=2)
    page = await db.async_query(camera_id=CAMERA, limit=2, cursor=page.next_cursor)
    day = await db.async_query(camera_id=CAMERA, day=T0.date(), limit=2)
    await db.async_query(camera_id=CAMERA, day=T0.date(), limit=2, cursor=day.next_cursor)
    await db.async_query(end=T0 + timedelta(hours=1), limit=2, cursor=day.next_cursor)
    await db.async_days(CAMERA)
    await db.async_purge(T0)
    threads = {thread for thread, _ in seen}
    assert len(threads) == 1
    assert threading.get_ident() not in threads
    assert not [sql for _, sql in seen if "OFFSET" in sql.upper()]

    paged = [sql for _, sql in seen if "event_id) <" in sql]
    assert len(paged) == 3

    def plan(sql: str) -> str:
        assert db._conn is not None
        rows = db._conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        return " ".join(str(row[-1]) for row in rows)

    # The cursor seeks the index (a range on it), it does not scan from the newest row or from
    # the end of the day or range; no sort: the index gives the order.
    camera, day_page, ranged = [await db._run(plan, sql) for sql in paged]
    assert "events_camera_start (camera_id=? AND (start_ts,event_id)<(?,?))" in camera
    assert "events_camera_start (camera_id=? AND start_ts>? AND (start_ts,event_id)<(?,?))" in (
        day_page
    )
    assert "events_start ((start_ts,event_id)<(?,?))" in ranged
    assert "TEMP B-TREE" not in camera + day_page + ranged


async def test_paging_newest_first_every_event_once(db: EventDatabase) -> None:
    """Pages follow each other without gaps or repeats, newest first, ties broken by id."""
    events = [make_event(T0 + timedelta(seconds=i // 3)) for i in range(50)]  # ties of 3
    for event in events:
        await db.async_upsert(event)
    await db.async_upsert(make_event(camera_id=OTHER))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await db.async_query(camera_id=CAMERA, limit=7, cursor=cursor)
        pages += 1
        seen.extend(event.event_id for event in page.events)
        if (cursor := page.next_cursor) is None:
            break
    assert pages == 8
    expected = sorted(events, key=lambda e: (e.start, e.event_id), reverse=True)
    assert seen == [event.event_id for event in expected]


async def test_filters(db: EventDatabase) -> None:
    """Camera, level, severity, time range (overlap) and day select what they say."""
    low = make_event(T0, score=10)
    high = make_event(T0 + timedelta(hours=1), score=70)
    critical = make_event(T0 + timedelta(hours=2), score=95, alert=False)
    other = make_event(T0 + timedelta(hours=3), camera_id=OTHER, score=40)
    still_open = make_event(T0 + timedelta(hours=4), length=None)
    for event in (low, high, critical, other, still_open):
        await db.async_upsert(event)

    async def ids(**kwargs: object) -> set[str]:
        page = await db.async_query(**kwargs)  # type: ignore[arg-type]
        return {event.event_id for event in page.events}

    assert await ids(camera_id=OTHER) == {other.event_id}
    assert await ids(min_level="high") == {high.event_id, critical.event_id, still_open.event_id}
    assert await ids(min_level="critical") == {critical.event_id}
    assert await ids(severity="alert") == {high.event_id, still_open.event_id}
    assert await ids(severity="detection") == {low.event_id, critical.event_id, other.event_id}
    # Overlap: the low event (22:00:00-22:00:40) overlaps a range starting at 22:00:20.
    assert await ids(start=T0 + timedelta(seconds=20), end=T0 + timedelta(minutes=90)) == {
        low.event_id,
        high.event_id,
    }
    # An open event lasts: a range long after its start still finds it.
    assert await ids(start=T0 + timedelta(hours=5)) == {still_open.event_id}
    assert await ids(end=T0 + timedelta(minutes=1)) == {low.event_id}
    assert await ids(day=date(2026, 11, 30)) == {low.event_id, high.event_id}
    assert await db.async_days(CAMERA) == [(date(2026, 12, 1), 2), (date(2026, 11, 30), 2)]
    assert sorted(await db.async_cameras()) == sorted([CAMERA, OTHER])
    with pytest.raises(ValueError, match="limit"):
        await db.async_query(limit=0)
    with pytest.raises(ValueError, match="naive"):
        await db.async_query(start=datetime(2026, 1, 1))


async def test_days_in_the_configured_time_zone(tmp_path: Path) -> None:
    """Days count in the time zone given: 23:30 UTC is the next day in UTC+2."""
    database = EventDatabase(tmp_path / DB_FILE, tz=UTC)
    await database.async_open()
    await database.async_upsert(make_event(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)))
    assert await database.async_days(CAMERA) == [(date(2026, 11, 30), 1)]
    await database.async_close()
    from zoneinfo import ZoneInfo

    database = EventDatabase(tmp_path / DB_FILE, tz=ZoneInfo("Europe/Athens"))
    await database.async_open()
    await database.async_upsert(make_event(datetime(2026, 11, 30, 23, 45, tzinfo=UTC)))
    assert await database.async_days(CAMERA) == [(date(2026, 12, 1), 1), (date(2026, 11, 30), 1)]
    await database.async_close()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "../../etc",
        "a" * 201,
        _encode_cursor(1.0, "../x").rstrip("="),
        "WzEsMl0",  # [1,2]: the id is no event id
        "WyJ4IiwiYWJjIl0",  # ["x","abc"]
        "e30",  # {}
        "!!!!",
        "YWJj",  # "abc": not JSON
    ],
)
async def test_invalid_cursors(db: EventDatabase, cursor: str) -> None:
    """A cursor the database did not hand out is refused, never used in SQL."""
    assert not is_cursor(cursor)
    with pytest.raises(InvalidCursorError):
        await db.async_query(cursor=cursor)


def test_cursor_round_trip() -> None:
    """A cursor stands for its (start, id)."""
    assert decode_cursor(_encode_cursor(12.5, "a" * 32)) == (12.5, "a" * 32)
    with pytest.raises(InvalidCursorError):
        decode_cursor(_encode_cursor(True, "a" * 32))


async def test_purge_returns_what_it_removed(db: EventDatabase) -> None:
    """Events that ended before the cutoff go (per camera when asked); the rest stay."""
    old = make_event(T0 - timedelta(days=20))
    old_other = make_event(T0 - timedelta(days=20), camera_id=OTHER)
    new = make_event(T0)
    for event in (old, old_other, new):
        await db.async_upsert(event)
    assert await db.async_purge(T0 - timedelta(days=14), camera_id=CAMERA) == [
        (CAMERA, old.event_id)
    ]
    assert await db.async_purge(T0 - timedelta(days=14)) == [(OTHER, old_other.event_id)]
    assert await db.async_purge(T0 - timedelta(days=14)) == []
    assert (await db.async_query()).events == (new,)
    removed = await db.async_delete_camera(CAMERA)
    assert [(camera, event) for camera, event, _ in removed] == [(CAMERA, new.event_id)]
    assert removed[0][2] == new.start
    assert (await db.async_query()).events == ()


async def test_survives_reopening(tmp_path: Path) -> None:
    """Events are still there after the database is closed and opened again (a restart)."""
    path = tmp_path / DB_FILE
    database = EventDatabase(path)
    await database.async_open()
    event = make_event(length=None)
    await database.async_upsert(event)
    await database.async_close()
    await database.async_close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        await database.async_get(event.event_id)
    database = EventDatabase(path)
    await database.async_open()
    assert await database.async_get(event.event_id) == event
    await database.async_close()


async def test_migration_from_version_1(tmp_path: Path) -> None:
    """A database of the first schema (no severity column, no time index) upgrades in place:
    rows keep their payload and gain their severity."""
    path = tmp_path / DB_FILE
    alert = make_event(T0, score=80)
    detection = make_event(T0 + timedelta(minutes=1), score=10)
    conn = sqlite3.connect(path)
    assert migrate(conn, target=1) == 0
    for event in (alert, detection):
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.event_id,
                event.camera_id,
                event.start.timestamp(),
                event.end.timestamp() if event.end else None,
                2 if event is alert else 0,
                event.start.date().isoformat(),
                json.dumps(event.to_dict()),
            ),
        )
    conn.commit()
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    assert "severity" not in columns
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()

    database = EventDatabase(path)
    await database.async_open()
    assert (await database.async_query(severity="alert")).events == (alert,)
    assert (await database.async_query(severity="detection")).events == (detection,)
    await database.async_close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(_MIGRATIONS)
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(events)")}
    assert {"events_camera_start", "events_start", "events_camera_day"} <= indexes
    conn.close()


async def test_failed_migration_step_keeps_the_previous_version(tmp_path: Path) -> None:
    """A step that fails rolls back whole: the file stays at its version, is not set aside,
    and the error reaches the caller."""
    path = tmp_path / DB_FILE
    conn = sqlite3.connect(path)
    migrate(conn, target=1)
    # Something the second step creates, already there: the step fails half-way.
    conn.execute("CREATE INDEX events_camera_day ON events (camera_id, day)")
    conn.commit()
    conn.close()
    database = EventDatabase(path)
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        await database.async_open()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    assert "severity" not in columns  # the step's first statement was rolled back too
    conn.close()
    assert [p.name for p in tmp_path.iterdir() if "corrupt" in p.name] == []


async def test_newer_schema_is_refused_and_kept(tmp_path: Path) -> None:
    """A file from a newer release is not touched (no downgrade, no rename)."""
    tmp_path = tmp_path / "db"
    tmp_path.mkdir()
    path = tmp_path / DB_FILE
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    database = EventDatabase(path)
    with pytest.raises(DatabaseTooNewError):
        await database.async_open()
    assert {p.name for p in tmp_path.iterdir()} <= {DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    conn.close()


async def test_corrupt_file_is_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file that is not a database is renamed aside (kept, for the curious) with an error in
    the log; a new database takes its place and the folder's other files stay."""
    folder = tmp_path / "home_security_intel"
    folder.mkdir()
    path = folder / DB_FILE
    garbage = b"this is not an SQLite database" * 100
    path.write_bytes(garbage)
    keep = folder / "models"
    keep.mkdir()
    database = EventDatabase(path)
    with caplog.at_level(logging.ERROR):
        await database.async_open()
    event = make_event()
    await database.async_upsert(event)
    assert await database.async_get(event.event_id) == event
    await database.async_close()
    aside = [p for p in folder.iterdir() if p.name.startswith(f"{DB_FILE}.corrupt-")]
    assert len(aside) == 1
    assert aside[0].read_bytes() == garbage
    assert keep.is_dir()
    assert "is damaged" in caplog.text
    assert "renamed to events.db.corrupt-" in caplog.text


async def test_damaged_pages_are_set_aside(tmp_path: Path) -> None:
    """A database whose pages are overwritten fails its check and is replaced too."""
    path = tmp_path / DB_FILE
    database = EventDatabase(path)
    await database.async_open()
    for i in range(200):
        await database.async_upsert(make_event(T0 + timedelta(seconds=i)))
    await database.async_close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2 : page * 4] = b"\x55" * (page * 2)  # wipe two pages of the table's tree
    path.write_bytes(bytes(data))
    database = EventDatabase(path)
    await database.async_open()
    assert (await database.async_query()).events == ()
    await database.async_close()
    assert any(p.name.startswith(f"{DB_FILE}.corrupt-") for p in tmp_path.iterdir())


def test_set_aside_moves_the_sidecars(tmp_path: Path) -> None:
    """A damaged database's WAL and shared-memory files go aside with it (they belong to it)."""
    database = EventDatabase(tmp_path / DB_FILE)
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
        (tmp_path / name).write_bytes(name.encode())
    aside = database._set_aside()
    assert not (tmp_path / DB_FILE).exists()
    assert (tmp_path / f"{aside.name}-wal").read_bytes() == f"{DB_FILE}-wal".encode()
    assert (tmp_path / f"{aside.name}-shm").read_bytes() == f"{DB_FILE}-shm".encode()
