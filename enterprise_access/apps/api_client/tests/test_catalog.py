"""EnterpriseCatalogClient against the contract's payload shapes (§3)."""
from urllib.parse import parse_qs, urlsplit

import pytest

from enterprise_access.apps import api_client
from enterprise_access.apps.api_client import UpstreamRequestError, UpstreamUnavailableError
from enterprise_access.apps.api_client.testing import catalog_url

from .conftest import api_calls
from .payloads import CATALOG_UUID, COURSE_KEY, RUN_KEY, page

CONTAINS_PATH = f"/api/v2/enterprise-catalogs/{CATALOG_UUID}/contains_content_items/"
COURSE_RECORD = {"key": COURSE_KEY, "content_type": "course", "title": "Cooking for Engineers",
                 "first_enrollable_paid_seat_price": "199.00"}


@pytest.fixture
def client():
    return api_client.get_catalog_client()


@pytest.mark.parametrize("answer", [True, False])
def test_contains_content_items_is_cached_including_false(mock_upstream, client, answer):
    mock_upstream.get(catalog_url(CONTAINS_PATH), json={"contains_content_items": answer})

    assert client.contains_content_items(CATALOG_UUID, [RUN_KEY]) is answer
    assert api_client.get_catalog_client().contains_content_items(CATALOG_UUID, [RUN_KEY]) is answer

    [call] = api_calls(mock_upstream)
    assert parse_qs(urlsplit(call.request.url).query) == {"course_run_ids": [RUN_KEY]}


def test_contains_sends_repeated_keys_and_caches_per_key_set(mock_upstream, client):
    mock_upstream.get(catalog_url(CONTAINS_PATH), json={"contains_content_items": True})

    client.contains_content_items(CATALOG_UUID, [RUN_KEY, COURSE_KEY])
    client.contains_content_items(CATALOG_UUID, [COURSE_KEY, RUN_KEY])  # same set: cached
    client.contains_content_items(CATALOG_UUID, [COURSE_KEY])  # another set: asked

    first, second = api_calls(mock_upstream)
    assert parse_qs(urlsplit(first.request.url).query) == {"course_run_ids": sorted([RUN_KEY, COURSE_KEY])}
    assert parse_qs(urlsplit(second.request.url).query) == {"course_run_ids": [COURSE_KEY]}


def test_contains_cache_is_per_catalog(mock_upstream, client):
    other = "ca7a1060-0000-4000-8000-000000000004"
    mock_upstream.get(catalog_url(CONTAINS_PATH), json={"contains_content_items": True})
    mock_upstream.get(catalog_url(f"/api/v2/enterprise-catalogs/{other}/contains_content_items/"),
                 json={"contains_content_items": False})

    assert client.contains_content_items(CATALOG_UUID, [RUN_KEY]) is True
    assert client.contains_content_items(other, [RUN_KEY]) is False


def test_unknown_catalog_is_an_error_not_false(mock_upstream, client):
    mock_upstream.get(catalog_url(CONTAINS_PATH), status=404,
                      json={"detail": "No EnterpriseCatalog matches the query."})
    with pytest.raises(UpstreamRequestError) as raised:
        client.contains_content_items(CATALOG_UUID, [RUN_KEY])
    assert (raised.value.status, raised.value.message) == (404, "No EnterpriseCatalog matches the query.")


@pytest.mark.parametrize("body", [{}, {"contains_content_items": "true"}, {"contains_content_items": None}])
def test_contains_without_a_boolean_is_malformed(mock_upstream, client, body):
    mock_upstream.get(catalog_url(CONTAINS_PATH), json=body)
    with pytest.raises(UpstreamUnavailableError) as raised:
        client.contains_content_items(CATALOG_UUID, [RUN_KEY])
    assert raised.value.code == "malformed_response"


def test_contains_needs_a_list_of_keys(client):
    with pytest.raises(TypeError):
        client.contains_content_items(CATALOG_UUID, RUN_KEY)
    with pytest.raises(ValueError):
        client.contains_content_items(CATALOG_UUID, [])


def test_content_metadata_has_the_routes_trailing_slash_and_is_cached(mock_upstream, client):
    mock_upstream.get(catalog_url(f"/api/v1/content-metadata/{RUN_KEY}/"), json=COURSE_RECORD)

    assert client.get_content_metadata(RUN_KEY, coerce_to_parent_course=True) == COURSE_RECORD
    assert client.get_content_metadata(RUN_KEY, coerce_to_parent_course=True) == COURSE_RECORD

    [call] = api_calls(mock_upstream)
    assert urlsplit(call.request.url).path == f"/catalog/api/v1/content-metadata/{RUN_KEY}/"
    assert parse_qs(urlsplit(call.request.url).query) == {"coerce_to_parent_course": ["True"]}


def test_content_metadata_404_is_none_unless_the_404_is_not_json(mock_upstream, client):
    mock_upstream.get(catalog_url(f"/api/v1/content-metadata/{RUN_KEY}/"), status=404,
                      json={"detail": "No ContentMetadata matches the given query."})
    assert client.get_content_metadata(RUN_KEY) is None

    mock_upstream.replace("GET", catalog_url(f"/api/v1/content-metadata/{RUN_KEY}/"), status=404, body="<h1>nginx</h1>")
    with pytest.raises(UpstreamRequestError):
        client.get_content_metadata(RUN_KEY)


def test_catalog_content_metadata_walks_pages(mock_upstream, client):
    path = f"/api/v2/enterprise-catalogs/{CATALOG_UUID}/get_content_metadata/"
    second = catalog_url(path) + "?page=2&content_keys=x&traverse_pagination=True"
    mock_upstream.get(catalog_url(path), json=page([COURSE_RECORD], next_url=second))
    mock_upstream.get(second, json=page([{"key": "other"}]))

    assert client.get_catalog_content_metadata(CATALOG_UUID, [COURSE_KEY, "other"]) == [COURSE_RECORD, {"key": "other"}]
    first_query = parse_qs(urlsplit(api_calls(mock_upstream)[0].request.url).query)
    assert first_query == {"content_keys": [COURSE_KEY, "other"], "traverse_pagination": ["True"]}


CATALOG_RECORD_PATH = f"/api/v1/enterprise-catalogs/{CATALOG_UUID}/"


def test_retrieve_catalog_gives_its_customer_and_is_cached(mock_upstream, client):
    record = {"uuid": CATALOG_UUID, "title": "Demo", "enterprise_customer": "c0ffee00-0000-4000-8000-000000000001"}
    mock_upstream.get(catalog_url(CATALOG_RECORD_PATH), json=record)
    assert client.retrieve_catalog(CATALOG_UUID) == record
    assert api_client.get_catalog_client().retrieve_catalog(CATALOG_UUID) == record
    assert len(api_calls(mock_upstream)) == 1


def test_retrieve_catalog_unknown_is_none_and_not_cached(mock_upstream, client):
    mock_upstream.get(catalog_url(CATALOG_RECORD_PATH), status=404,
                      json={"detail": "No EnterpriseCatalog matches the given query."})
    assert client.retrieve_catalog(CATALOG_UUID) is None
    assert client.retrieve_catalog(CATALOG_UUID) is None
    assert len(api_calls(mock_upstream)) == 2


@pytest.mark.parametrize("answer", [{"uuid": CATALOG_UUID}, {"enterprise_customer": None}, ["x"]])
def test_retrieve_catalog_without_a_customer_is_malformed(mock_upstream, client, answer):
    mock_upstream.get(catalog_url(CATALOG_RECORD_PATH), json=answer)
    with pytest.raises(UpstreamUnavailableError):
        client.retrieve_catalog(CATALOG_UUID)
