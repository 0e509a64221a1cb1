"""enterprise-catalog: contains_content_items and the metadata endpoints (§3)."""
import pytest

from . import world

pytestmark = pytest.mark.emulator


def _contains(api, *keys, catalog=world.CATALOG, version="v2", **params):
    return api.get(f"/catalog/api/{version}/enterprise-catalogs/{catalog}/contains_content_items/",
                   params={"course_run_ids": list(keys), **params} if keys else params)


@pytest.mark.parametrize("key, expected", [
    (world.COOKING, True),  # exact content key
    (world.COOKING_RUN, True),  # a run nested in a contained course
    (world.COOKING_OLD_RUN, True),
    (world.BAKING_RUN, True),  # exact run key
    (world.BAKING, True),  # the parent course of a contained run
    (world.BAKING_OTHER_RUN, False),  # a sibling run of a run-only entry
    (world.GHOST, False),
    ("course-v1:Unknown+Key+1T2026", False),
    (world.OTHER_COURSE, False),  # another customer's catalog holds it
])
def test_contains_content_items_matching(api, key, expected):
    response = _contains(api, key)
    assert response.status_code == 200
    assert response.json() == {"contains_content_items": expected}


def test_unseeded_run_of_a_contained_course_is_matched_by_its_key_syntax(api, control):
    control.seed({"catalogs": [{"uuid": "ca7a1000-0000-4000-8000-0000000000f1",
                                "enterprise_customer_uuid": world.CUSTOMER, "content_keys": ["Bare+Course"]}]})
    response = _contains(api, "course-v1:Bare+Course+3T2030", catalog="ca7a1000-0000-4000-8000-0000000000f1")
    assert response.json() == {"contains_content_items": True}


def test_any_of_several_keys_matches_and_v1_answers_too(api):
    assert _contains(api, world.GHOST, world.COOKING_RUN).json() == {"contains_content_items": True}
    assert _contains(api, world.COOKING_RUN, version="v1").json() == {"contains_content_items": True}


def test_percent_encoded_query_keys_match(api):
    response = api.get(
        f"/catalog/api/v2/enterprise-catalogs/{world.CATALOG}/contains_content_items/"
        "?course_run_ids=course-v1:DemoU%2BCooking101%2B2T2026"
    )
    assert response.json() == {"contains_content_items": True}


def test_contains_needs_a_query_parameter(api):
    response = _contains(api)
    assert response.status_code == 400
    assert isinstance(response.json(), list)


def test_unknown_catalog_is_404_detail(api):
    # DRF's get_object: an unknown uuid names the model, a malformed one is a bare "Not found.".
    response = _contains(api, world.COOKING, catalog=world.UNKNOWN_UUID)
    assert response.status_code == 404
    assert response.json() == {"detail": "No EnterpriseCatalog matches the given query."}
    malformed = _contains(api, world.COOKING, catalog="not-a-uuid")
    assert (malformed.status_code, malformed.json()) == (404, {"detail": "Not found."})


def test_raw_content_metadata_without_trailing_slash(api):
    course = api.get(f"/catalog/api/v1/content-metadata/{world.COOKING}")
    assert course.status_code == 200
    body = course.json()
    assert body["content_type"] == "course"
    assert body["key"] == world.COOKING
    assert body["product_source"]["slug"] == "edx"
    assert body["normalized_metadata"]["content_price"] == 199.0
    assert body["normalized_metadata_by_run"][world.COOKING_OLD_RUN]["content_price"] == 150.0
    assert {run["key"] for run in body["course_runs"]} == {world.COOKING_RUN, world.COOKING_OLD_RUN}
    advertised = next(run for run in body["course_runs"] if run["uuid"] == body["advertised_course_run_uuid"])
    assert advertised["key"] == world.COOKING_RUN
    assert advertised["first_enrollable_paid_seat_price"] == 199

    run = api.get(f"/catalog/api/v1/content-metadata/{world.COOKING_RUN}").json()
    assert run["content_type"] == "courserun"
    coerced = api.get(f"/catalog/api/v1/content-metadata/{world.COOKING_RUN}",
                      params={"coerce_to_parent_course": "True"}).json()
    assert coerced["key"] == world.COOKING

    exec_ed = api.get(f"/catalog/api/v1/content-metadata/{world.EXEC}").json()
    assert exec_ed["product_source"]["slug"] == "2u"
    assert exec_ed["entitlements"][0] == {"mode": "paid-executive-education", "price": "2500.00", "currency": "USD",
                                          "sku": exec_ed["entitlements"][0]["sku"]}

    assert api.get("/catalog/api/v1/content-metadata/Unknown+Course").status_code == 404


def test_get_content_metadata_lists_catalog_records(api):
    path = f"/catalog/api/v2/enterprise-catalogs/{world.CATALOG}/get_content_metadata/"

    chosen = api.get(path, params={"content_keys": [world.COOKING_RUN, world.BAKING_RUN, world.GHOST],
                                   "traverse_pagination": "True"}).json()
    assert chosen["next"] is None
    assert [record["key"] for record in chosen["results"]] == [world.COOKING, world.BAKING_RUN]

    everything = api.get(path, params={"page_size": 2}).json()
    assert everything["count"] == 5
    assert len(everything["results"]) == 2
    assert everything["next"].startswith(api.url)


def test_customer_scoped_record_used_for_pricing(api):
    path = f"/catalog/api/v1/enterprise-customer/{world.CUSTOMER}/content-metadata"
    assert api.get(f"{path}/{world.COOKING_RUN}/").json()["key"] == world.COOKING
    assert api.get(f"{path}/{world.BAKING_RUN}/").json()["content_type"] == "courserun"
    assert api.get(f"{path}/{world.GHOST}/").status_code == 404



def test_a_catalog_record_names_its_customer(api):
    response = api.get(f"/catalog/api/v1/enterprise-catalogs/{world.CATALOG}/")
    assert response.status_code == 200
    assert response.json()["uuid"] == world.CATALOG and response.json()["enterprise_customer"] == world.CUSTOMER
    unknown = api.get("/catalog/api/v1/enterprise-catalogs/ca7a1000-0000-4000-8000-0000000000aa/")
    assert unknown.status_code == 404 and unknown.json()["detail"]
