import urllib.error
import urllib.request


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_live_site_is_refused_while_on(live_server, maintenance):
    orders = live_server.url("/orders")
    assert status_of(orders) == 200
    maintenance.enable()
    assert status_of(orders) == 503
    maintenance.disable()
    assert status_of(orders) == 200


def test_the_live_site_is_back_for_the_next_test(live_server):
    assert status_of(live_server.url("/orders")) == 200
