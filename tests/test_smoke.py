def test_register_login_book(client, customer, make_event, wait_for_notifications):
    event = make_event(totalTickets=5)
    response = client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 2}, headers=customer.headers)
    assert response.status_code == 201
    assert response.get_json()["event"]["availableTickets"] == 3
    notes = wait_for_notifications(customer, 1)
    assert notes[0]["kind"] == "BOOKING_CONFIRMED"
