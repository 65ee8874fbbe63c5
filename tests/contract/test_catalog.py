"""Contract of ``/api/catalog/``: products and categories, read-only and public."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from tests.contract.helpers import assert_error, assert_page, assert_product

AREA = "catalog"  # runs against every deployment that serves /api/catalog/

PRODUCTS = "/api/catalog/products/"
CATEGORIES = "/api/catalog/categories/"


def test_product_list_is_a_page_of_20_products_by_default(api: httpx.Client) -> None:
    response = api.get(PRODUCTS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    results = assert_page(body)
    assert body["previous"] is None
    assert len(results) == min(20, body["count"])
    if body["count"] > 20:
        assert body["next"]
    for product in results:
        assert_product(product)


def test_pages_are_disjoint_and_ordered_by_id(api: httpx.Client) -> None:
    first = assert_page(api.get(PRODUCTS, params={"page_size": 7}).json())
    second_body = api.get(PRODUCTS, params={"page_size": 7, "page": 2}).json()
    second = assert_page(second_body)
    assert second_body["previous"]
    ids = [p["id"] for p in first + second]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids) == 14


def test_page_size_is_capped_at_100(api: httpx.Client) -> None:
    body = api.get(PRODUCTS, params={"page_size": 1000}).json()
    assert len(body["results"]) == min(100, body["count"])


@pytest.mark.parametrize("page", ["99999", "zero"])
def test_a_page_that_does_not_exist_is_404(api: httpx.Client, page: str) -> None:
    assert_error(api.get(PRODUCTS, params={"page": page}), 404, "not_found")


def test_price_filters_bound_the_results(api: httpx.Client) -> None:
    results = assert_page(
        api.get(PRODUCTS, params={"min_price": "50", "max_price": "150", "page_size": 100}).json()
    )
    assert results
    assert all(Decimal("50") <= Decimal(p["price"]) <= Decimal("150") for p in results)


def test_in_stock_filter(api: httpx.Client) -> None:
    in_stock = assert_page(api.get(PRODUCTS, params={"in_stock": "true", "page_size": 100}).json())
    assert in_stock
    assert all(p["stock"] > 0 for p in in_stock)
    sold_out = assert_page(api.get(PRODUCTS, params={"in_stock": "false", "page_size": 100}).json())
    assert all(p["stock"] == 0 for p in sold_out)


def test_a_malformed_filter_value_is_a_validation_error_naming_the_field(api: httpx.Client) -> None:
    error = assert_error(api.get(PRODUCTS, params={"min_price": "cheap"}), 400, "validation_error")
    assert "min_price" in error["fields"]


def test_category_filter_includes_subcategories(api: httpx.Client) -> None:
    categories = assert_page(api.get(CATEGORIES, params={"page_size": 100}).json())
    parent = next(c for c in categories if c["parent"] is None)
    children = {c["slug"] for c in categories if c["parent"] == parent["id"]}
    results = assert_page(
        api.get(PRODUCTS, params={"category": parent["slug"], "page_size": 100}).json()
    )
    assert results
    assert {p["category"]["slug"] for p in results} <= children | {parent["slug"]}


def test_search_matches_name_sku_or_description(api: httpx.Client) -> None:
    some = api.get(PRODUCTS).json()["results"][0]
    term = some["name"].split()[1].lower()
    results = assert_page(api.get(PRODUCTS, params={"search": term, "page_size": 100}).json())
    assert some["id"] in {p["id"] for p in results} or len(results) == 100
    for product in results:
        haystack = f"{product['name']} {product['sku']} {product['description']}".lower()
        assert term in haystack


@pytest.mark.parametrize(("ordering", "reverse"), [("price", False), ("-price", True)])
def test_ordering_by_price(api: httpx.Client, ordering: str, reverse: bool) -> None:
    results = assert_page(api.get(PRODUCTS, params={"ordering": ordering}).json())
    prices = [Decimal(p["price"]) for p in results]
    assert prices == sorted(prices, reverse=reverse)


def test_product_detail_matches_the_list_entry(api: httpx.Client) -> None:
    listed = api.get(PRODUCTS).json()["results"][3]
    response = api.get(f"{PRODUCTS}{listed['id']}/")
    assert response.status_code == 200
    assert response.json() == listed


@pytest.mark.parametrize("product_id", ["999999", "abc"])
def test_unknown_product_is_404_in_the_error_envelope(api: httpx.Client, product_id: str) -> None:
    assert_error(api.get(f"{PRODUCTS}{product_id}/"), 404, "not_found")


def test_catalog_is_read_only(api: httpx.Client) -> None:
    assert_error(api.post(PRODUCTS, json={"name": "x"}), 405, "method_not_allowed")


def test_categories_list_and_detail(api: httpx.Client) -> None:
    results = assert_page(api.get(CATEGORIES).json())
    assert results
    for category in results:
        assert set(category) == {"id", "name", "slug", "parent", "description", "product_count"}
    first = results[0]
    assert api.get(f"{CATEGORIES}{first['id']}/").json() == first
    assert_error(api.get(f"{CATEGORIES}999999/"), 404, "not_found")


def test_unknown_api_path_is_json_404(api: httpx.Client) -> None:
    assert_error(api.get("/api/catalog/nothing-here/"), 404, "not_found")
