import urllib.error
import urllib.request


def status_of(url, method="GET"):
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_live_site_is_down_during_maintenance(live_server, maintenance):
    url = live_server.url("/orders")
    with maintenance.enabled():
        assert status_of(url) == 503
    assert status_of(url) == 200


def test_the_live_site_takes_no_orders_while_readonly(maintenance, live_server):
    url = live_server.url("/orders")
    with maintenance.enabled(mode="readonly"):
        assert status_of(url, "POST") == 503
        assert status_of(url) == 200
    assert status_of(url, "POST") == 200
