def test_orders_are_refused_while_readonly(client, maintenance):
    with maintenance.enabled(mode="readonly"):
        assert client.post("/orders").status_code == 503
        assert client.get("/orders").status_code == 200
    assert client.post("/orders").status_code == 201


def test_api_clients_get_the_message(client, maintenance):
    maintenance.enable(message="Back at noon")
    response = client.get("/orders", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json["detail"] == "Back at noon"
