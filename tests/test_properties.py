"""Property-based tests: the parsers never raise anything but their documented error, and
``Retry-After`` is never negative, whatever the input.
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_maintenance import Maintenance
from flask_maintenance.errors import ConfigurationError
from flask_maintenance.model import State
from flask_maintenance.responses import blocked, public_status
from flask_maintenance.rules import MAX_MESSAGE_LENGTH, MODES
from flask_maintenance.rules import MAX_SECONDS as MAX_RETRY
from flask_maintenance.times import MAX_DURATION, parse_duration, parse_instant

# No example database in the repository, no flaky deadlines on a busy machine, a quick suite.
PROPERTIES = settings(
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INTEGER = re.compile(r"\A[0-9]+\Z")
DEFAULT_RETRY = 60

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
utc_datetimes = st.datetimes(timezones=st.just(timezone.utc))
offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
instant_texts = st.one_of(
    st.text(),
    st.datetimes(timezones=offsets).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.isoformat()),  # no zone: refused
    st.datetimes(timezones=st.just(timezone.utc)).map(lambda moment: moment.isoformat()[:19] + "Z"),
)
#: Lock-file records: the known fields with values of any JSON type, or of the right type.
records = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(MODES) | json_values,
        "retry": st.integers() | json_values,
        "message": st.text() | json_values,
        "started_at": instant_texts | json_values,
        "ends_at": instant_texts | json_values,
        "user": st.text() | json_values,
        "host": st.text() | json_values,
        "window": st.text() | json_values,
        "token_hash": st.text() | json_values,
        "extra": json_values,
    },
)


def assert_sane(state: State, problem: str | None) -> None:
    """What every parse result must be, however bad the content."""
    assert state.active is True
    assert state.mode in MODES
    assert problem is None or isinstance(problem, str)
    assert state.retry is None or 0 <= state.retry <= MAX_RETRY
    assert state.retry_after() >= 0
    if state.message is not None:
        assert isinstance(state.message, str) and len(state.message) <= MAX_MESSAGE_LENGTH
        state.message.encode("utf-8")  # it goes into pages and headers
    for moment in (state.started_at, state.ends_at):
        assert moment is None or moment.utcoffset() == timedelta(0)


# -- State.parse -------------------------------------------------------------------------------


@PROPERTIES
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\x00")
@example(b"[" * 100_000)
@example(b'{"retry": 1e999}')
@example(b'{"ends_at": "9999-12-31T23:59:59-14:00"}')
@example(b'{"message": "\\udcff \\ud800"}')
def test_state_parse_never_raises_on_arbitrary_bytes_and_is_always_on(raw: bytes) -> None:
    assert_sane(*State.parse(raw, DEFAULT_RETRY))


@PROPERTIES
@given(json_values)
def test_state_parse_never_raises_on_arbitrary_json_and_is_always_on(value: Any) -> None:
    assert_sane(*State.parse(json.dumps(value).encode(), DEFAULT_RETRY))


@PROPERTIES
@given(records, st.integers(min_value=0, max_value=MAX_RETRY))
def test_state_parse_of_any_lock_record_is_on_with_typed_fields(
    record: dict[str, Any], default_retry: int
) -> None:
    state, problem = State.parse(json.dumps(record).encode(), default_retry)
    assert_sane(state, problem)
    if "retry" not in record or record["retry"] is None:
        # No retry of its own: it sends the configured one (or counts down to its end).
        assert state.retry is None and state.default_retry == default_retry
        if state.ends_at is None:
            assert state.retry_after() == default_retry


@PROPERTIES
@given(
    st.builds(
        State,
        active=st.just(True),
        mode=st.sampled_from(MODES),
        retry=st.none() | st.integers(min_value=0, max_value=MAX_RETRY),
        message=st.none() | st.text(min_size=1, max_size=MAX_MESSAGE_LENGTH),
        started_at=st.none() | utc_datetimes.map(lambda m: m.replace(microsecond=0)),
        ends_at=st.none() | utc_datetimes.map(lambda m: m.replace(microsecond=0)),
        user=st.none() | st.text(),
        host=st.none() | st.text(),
        window=st.none() | st.text(),
        token_hash=st.none() | st.text(),
    )
)
def test_what_state_writes_it_reads_back(state: State) -> None:
    parsed, problem = State.parse(state.to_json(), DEFAULT_RETRY)
    assert problem is None
    clean = state.message.encode("utf-8", "replace").decode() if state.message else state.message
    assert (parsed.mode, parsed.message, parsed.ends_at) == (state.mode, clean, state.ends_at)
    assert parsed.retry == state.retry
    assert parsed.default_retry == DEFAULT_RETRY


# -- --for and --until -------------------------------------------------------------------------


@PROPERTIES
@given(
    st.text()
    | st.from_regex(r"\A\s*([0-9]{1,7}\s*[smhdwSMHDW]\s*){1,4}\Z")
    | st.from_regex(r"\A[0-9]{1,9}\Z")
)
@example("9" * 5000)
@example("9" * 5000 + "s")
@example("1" + "0" * 30 + "w")
@example("²")
@example("٣m")
@example("0")
@example("")
def test_parse_duration_raises_only_configuration_error(text: str) -> None:
    try:
        duration = parse_duration(text)
    except ConfigurationError as error:
        assert isinstance(error, ValueError)
        return
    assert timedelta(0) < duration <= MAX_DURATION


@PROPERTIES
@given(instant_texts)
@example("0001-01-01T00:00:00+14:00")
@example("9999-12-31T23:59:59-14:00")
@example("2026-11-21T22:00:00")
@example("2026-11-21T22:00:00Z")
@example("\x00")
def test_parse_instant_raises_only_configuration_error(text: str) -> None:
    try:
        moment = parse_instant(text)
    except ConfigurationError as error:
        assert isinstance(error, ValueError)
        return
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T22:00:00Z",
        "2026-11-21t22:00:00z",
        "2026-11-21 22:00:00Z",
        "2026-11-21T23:00:00+01:00",
        "2026-11-21T23:00:00+0100",
        "2026-11-21T23:00:00+01",
        "2026-11-21T23:00+01:00",
        "2026-11-21T16:30:00-05:30",
        "2026-11-21T22:00:00.000Z",
        "2026-11-21T22:00:00,0000000Z",
        "20261121T220000Z",
        "  2026-11-21T22:00:00Z\n",
    ],
)
def test_parse_instant_reads_the_same_iso_8601_forms_on_every_python(text: str) -> None:
    # Python 3.10's fromisoformat refuses most of these (Z, +0100, odd fractions): the parser
    # is our own, so `--until` means the same on 3.10 as on 3.13 (CI runs both ends).
    assert parse_instant(text) == datetime(2026, 11, 21, 22, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T22:00:00",
        "2026-11-21",
        "22:00Z",
        "2026-11-21T22:00:00+24:00",
        "2026-02-30T00:00Z",
        "tomorrow",
    ],
)
def test_parse_instant_refuses_what_is_not_an_instant_with_a_zone(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_instant(text)


@pytest.fixture(scope="module")
def cli_app() -> Flask:
    app = Flask("properties", instance_path=tempfile.mkdtemp(prefix="flask-maintenance-properties-"))
    app.config.update(SECRET_KEY="properties", MAINTENANCE_CHECK_INTERVAL=0)
    Maintenance(app)
    return app


@settings(PROPERTIES, max_examples=60)
@given(st.sampled_from(["--for", "--until"]), instant_texts | st.text())
@example("--for", "9" * 5000)
@example("--until", "9999-12-31T23:59:59-14:00")
def test_cli_for_and_until_reject_bad_input_as_a_usage_error(cli_app: Flask, option: str, text: str) -> None:
    result = cli_app.test_cli_runner().invoke(args=["maintenance", "on", option, text])
    # 0: accepted; 2: a usage error with a message. Never a traceback.
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert "Error:" in result.output
    Path(cli_app.config["MAINTENANCE_LOCK_FILE"]).unlink(missing_ok=True)


@pytest.mark.parametrize(
    "retry",
    [
        "abc",
        "-1",
        "1.5",
        "",
        " ",
        "1e3",
        "\u00b2",  # str.isdigit() says yes, int() says no
        "\u0663",  # an Arabic-Indic three
        pytest.param(
            "9" * 5000,
            id="5000-digits",
        ),
    ],
)
def test_cli_retry_rejects_bad_input_as_a_usage_error(cli_app: Flask, retry: str) -> None:
    result = cli_app.test_cli_runner().invoke(args=["maintenance", "on", "--retry", retry])
    assert result.exit_code == 2, repr(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_schedule_past_the_end_of_time_is_a_usage_error(cli_app: Flask) -> None:
    result = cli_app.test_cli_runner().invoke(
        args=["maintenance", "schedule", "--at", "9999-12-31T23:00:00Z", "--for", "2d"]
    )
    assert result.exit_code == 2, repr(result.exception)


# -- Retry-After ---------------------------------------------------------------------------------


@PROPERTIES
@given(
    mode=st.sampled_from(["full", "readonly"]),
    retry=st.none() | st.integers(min_value=-(10**12), max_value=10**12),
    ends_at=st.none() | utc_datetimes,
    as_json=st.booleans(),
)
def test_retry_after_is_never_negative_and_always_an_integer(
    mode: str, retry: int | None, ends_at: datetime | None, as_json: bool
) -> None:
    state = State(active=True, mode=mode, retry=retry, ends_at=ends_at)
    now = datetime.now(timezone.utc)
    retry_after = state.retry_after(now)
    answer = blocked(
        state,
        readonly=mode == "readonly",
        as_json=as_json,
        retry_after=retry_after,
        status_url="/_maintenance",
        banner=None,
    )
    header = dict(answer.headers)["Retry-After"]
    assert INTEGER.match(header), header
    if as_json:
        assert json.loads(answer.body)["retry_after"] == int(header)
    assert public_status(state, now)["retry_after"] >= 0


@pytest.fixture(scope="module")
def served_app() -> Flask:
    app = Flask("retry", instance_path=tempfile.mkdtemp(prefix="flask-maintenance-retry-"))
    app.config.update(SECRET_KEY="retry", MAINTENANCE_CHECK_INTERVAL=0)
    app.get("/")(lambda: "home page")
    Maintenance(app)
    return app


@settings(PROPERTIES, max_examples=100)
@given(
    retry=json_values | st.integers(),
    ends_at=instant_texts | json_values,
    accept=st.sampled_from(["text/html", "application/json"]),
)
def test_retry_after_from_any_lock_file_is_a_non_negative_integer(
    served_app: Flask, retry: Any, ends_at: Any, accept: str
) -> None:
    lock = Path(served_app.config["MAINTENANCE_LOCK_FILE"])
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"mode": "full", "retry": retry, "ends_at": ends_at}))
    response = served_app.test_client().get("/", headers={"Accept": accept})
    assert response.status_code == 503
    assert INTEGER.match(response.headers["Retry-After"]), response.headers["Retry-After"]
    status = served_app.test_client().get("/_maintenance").get_json()
    assert status["retry_after"] >= 0
