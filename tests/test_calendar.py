"""``<status path>/calendar.ics``: the windows as an RFC 5545 feed, read back by a real parser.

The messages are the operator's, and a hand-edited lock file's: commas, semicolons, backslashes,
line breaks and long non-ASCII text must come out as the same text, never as new properties.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from servers import require_module

from flask_maintenance import Maintenance
from flask_maintenance.times import utcnow


@pytest.fixture(autouse=True)
def icalendar() -> Any:
    require_module("icalendar", 'pip install -e ".[test]"')
    import icalendar

    return icalendar


def feed(app: Flask) -> bytes:
    answer = app.test_client().get("/_maintenance/calendar.ics")
    assert answer.status_code == 200
    assert answer.mimetype == "text/calendar" and answer.mimetype_params["charset"] == "utf-8"
    return answer.data


def events(icalendar: Any, data: bytes) -> list[Any]:
    calendar = icalendar.Calendar.from_ical(data)
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    return [component for component in calendar.walk("VEVENT")]


def assert_well_formed(data: bytes) -> None:
    """CRLF after every line, none longer than 75 octets, folds never inside a character."""
    assert data.endswith(b"\r\n")
    lines = data[:-2].split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 75
    for line in lines:
        line.decode("utf-8")  # each physical line is whole characters
    assert lines[0] == b"BEGIN:VCALENDAR" and lines[-1] == b"END:VCALENDAR"


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def test_nothing_planned_is_an_empty_calendar(icalendar: Any, app: Flask) -> None:
    data = feed(app)
    assert_well_formed(data)
    assert events(icalendar, data) == []


def test_a_planned_window(icalendar: Any, app: Flask, maintenance: Maintenance) -> None:
    start = utc(utcnow() + timedelta(days=1))
    message = "Datenbank-Upgrade, Teil 2; bitte C:\\Daten sichern.\nDanach: 새 버전을 확인하세요 " * 3
    maintenance.schedule(start, start + timedelta(hours=2), mode="readonly", message=message, app=app)
    data = feed(app)
    assert_well_formed(data)
    assert b"Upgrade\\, Teil 2\\; bitte C:\\\\Daten sichern.\\nDanach" in data.replace(b"\r\n ", b"")
    (event,) = events(icalendar, data)
    assert event["SUMMARY"] == "Maintenance (read-only)"
    assert str(event["DESCRIPTION"]) == message
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTEND") == start + timedelta(hours=2)
    assert event.decoded("DTSTART").tzinfo is not None and b"DTSTART:" in data and b"Z\r\n" in data
    assert str(event["UID"]).endswith("@flask-maintenance")
    assert event.decoded("DTSTAMP") <= utc(utcnow()) + timedelta(seconds=1)


def test_the_current_window_and_the_next(icalendar: Any, app: Flask, maintenance: Maintenance) -> None:
    now = utc(utcnow())
    maintenance.enable(message="Now", ends_at=now + timedelta(hours=1), app=app)
    maintenance.schedule(now + timedelta(days=7), app=app)
    data = feed(app)  # served in full maintenance: the status path's files are always open
    assert_well_formed(data)
    current, planned = events(icalendar, data)
    assert current["DESCRIPTION"] == "Now" and current.decoded("DTEND") == now + timedelta(hours=1)
    assert planned.decoded("DTSTART") == now + timedelta(days=7) and "DTEND" not in planned
    assert current["UID"] != planned["UID"]


def test_the_uid_stays_when_the_window_is_edited(
    icalendar: Any, app: Flask, maintenance: Maintenance
) -> None:
    start = utc(utcnow() + timedelta(days=1))
    maintenance.schedule(start, message="First", app=app)
    before = events(icalendar, feed(app))[0]["UID"]
    maintenance.schedule(start, start + timedelta(hours=1), message="Second", app=app)
    assert events(icalendar, feed(app))[0]["UID"] == before


@pytest.mark.parametrize(
    "message",
    [
        "x\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Free pizza\r\nDTSTART:20000101T000000Z",
        "a\rSUMMARY:forged",
        "tab\there, bell\x07, delete\x7f, escape\x1b[0m",
        "\\n is not a line break; \\, is not a comma",
        "é" * 500,
    ],
    ids=["crlf-injection", "cr", "controls", "backslashes", "long-multibyte"],
)
def test_hostile_messages_stay_text(
    icalendar: Any, app: Flask, maintenance: Maintenance, message: str
) -> None:
    maintenance.schedule(utcnow() + timedelta(hours=3), message=message, app=app)
    data = feed(app)
    assert_well_formed(data)
    (event,) = events(icalendar, data)
    assert event["SUMMARY"] == "Maintenance"
    expected = message.replace("\r\n", "\n").replace("\r", "\n")
    expected = "".join(c for c in expected if c in "\t\n" or (c >= " " and c != "\x7f"))
    assert str(event["DESCRIPTION"]) == expected
