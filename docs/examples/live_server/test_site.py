import time
import urllib.error
import urllib.request


def status_of(url, method="GET"):
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_for_status(url, expected, method="GET", seconds=10):
    """The server re-reads the state once a second (MAINTENANCE_CHECK_INTERVAL)."""
    deadline = time.monotonic() + seconds
    while status_of(url, method) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return status_of(url, method)


def test_the_live_site_is_down_during_maintenance(live_server, maintenance):
    url = live_server.url("/orders")
    with maintenance.enabled():
        assert wait_for_status(url, 503) == 503
    assert wait_for_status(url, 200) == 200


def test_the_live_site_takes_no_orders_while_readonly(maintenance, live_server):
    url = live_server.url("/orders")
    with maintenance.enabled(mode="readonly"):
        assert wait_for_status(url, 503, method="POST") == 503
        assert status_of(url) == 200
    assert wait_for_status(url, 200, method="POST") == 200
