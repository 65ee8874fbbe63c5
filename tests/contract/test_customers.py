"""Contract of ``/api/customers/``: registration, tokens, one's own profile."""

from __future__ import annotations

import httpx

from tests.contract.conftest import Account, Target
from tests.contract.helpers import CUSTOMER_KEYS, assert_error

AREA = "customers"  # runs against every deployment that serves /api/customers/

CUSTOMERS = "/api/customers/"


def test_registration_returns_the_profile_and_a_token(customer: Account, api: httpx.Client) -> None:
    me = customer.client.get(f"{CUSTOMERS}me/")
    assert me.status_code == 200
    body = me.json()
    assert set(body) == CUSTOMER_KEYS
    assert body["email"] == customer.email
    assert body["city"] == "Berlin"


def test_registering_an_existing_email_is_a_conflict(customer: Account, api: httpx.Client) -> None:
    response = api.post(
        CUSTOMERS,
        json={"email": customer.email.upper(), "password": "Another-pass-123", "full_name": "X"},
    )
    assert_error(response, 409, "conflict")


def test_registration_validates_fields(api: httpx.Client) -> None:
    response = api.post(
        CUSTOMERS, json={"email": "not-an-email", "password": "123", "full_name": ""}
    )
    error = assert_error(response, 400, "validation_error")
    assert {"email", "password", "full_name"} <= set(error["fields"])


def test_token_for_good_credentials(customer: Account, api: httpx.Client) -> None:
    response = api.post(
        f"{CUSTOMERS}token/", json={"email": customer.email, "password": customer.password}
    )
    assert response.status_code == 200
    assert response.json() == {"token": customer.token}


def test_token_for_bad_credentials_is_401(customer: Account, api: httpx.Client) -> None:
    response = api.post(f"{CUSTOMERS}token/", json={"email": customer.email, "password": "wrong"})
    assert_error(response, 401, "authentication_failed")


def test_profile_needs_a_valid_token(api: httpx.Client) -> None:
    assert_error(api.get(f"{CUSTOMERS}me/"), 401, "not_authenticated")
    bad = api.get(f"{CUSTOMERS}me/", headers={"Authorization": "Token not-a-real-token"})
    assert_error(bad, 401, "authentication_failed")


def test_profile_can_be_edited(customer: Account) -> None:
    response = customer.client.patch(f"{CUSTOMERS}me/", json={"city": "Hamburg", "email": "x@y.z"})
    assert response.status_code == 200
    assert response.json()["city"] == "Hamburg"
    assert response.json()["email"] == customer.email  # read-only, ignored


def test_customers_see_only_themselves(customer: Account, other_customer: Account) -> None:
    assert customer.client.get(f"{CUSTOMERS}{customer.id}/").status_code == 200
    assert_error(customer.client.get(f"{CUSTOMERS}{other_customer.id}/"), 404, "not_found")
    assert_error(customer.client.get(CUSTOMERS), 403, "permission_denied")


def test_staff_list_customers(staff: httpx.Client, customer: Account, target: Target) -> None:
    response = staff.get(CUSTOMERS, params={"search": customer.email})
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [customer.id]
