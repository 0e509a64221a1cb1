"""
Catalog knowledge shared by the catalog, subsidy and LMS emulations.

- ``catalog_contains``: the three-way match of ``contains_content_items`` (§3.1).
- ``resolve_for_customer``: the customer-scoped record and run a subsidy prices against (§5.4).
- ``content_summary``: the subsidy ``content-metadata`` summary (§2.3).
- ``course_record`` / ``run_record``: raw catalog metadata records (§3.2), in discovery's shape.
"""
import re
from dataclasses import dataclass
from decimal import Decimal

from .seeding import SOURCE_2U

MODE_VERIFIED = "verified"
MODE_EXEC_ED = "paid-executive-education"

_RUN_KEY = re.compile(r"^course-v1:(?P<org>[^+]+)\+(?P<number>[^+]+)\+(?P<run>.+)$")


def parent_course_key(store, key):
    """The course key a run key belongs to (seeded runs first, then the key's own syntax), or None."""
    owner = store.run_owner(key)
    if owner:
        return owner[0]
    match = _RUN_KEY.match(key)
    return f"{match['org']}+{match['number']}" if match else None


def catalog_contains(store, catalog, key):
    """
    Whether ``catalog`` contains ``key``: exactly, as a run nested in a contained course, or as the
    parent course of a contained run.
    """
    keys = set(catalog["content_keys"])
    if key in keys:
        return True
    parent = parent_course_key(store, key)
    if parent is not None and parent in keys:
        return True
    return any(parent_course_key(store, contained) == key for contained in keys)


@dataclass
class Resolved:
    """What a customer-scoped lookup of a key found: the course, the run it means, the record kind."""

    course: dict
    run: dict  # None when the course has no runs
    record_is_run: bool


def locate(store, key):
    """``(course, run or None, key_is_run)`` for a course key/uuid or a run key/uuid; None if unknown."""
    course = store.course(key) or store.course_by_uuid(key)
    if course is not None:
        return course, advertised_run(course), False
    owner = store.run_owner(key)
    if owner is None:
        return None
    course = store.course(owner[0])
    if course is None:
        return None
    run = next((run for run in course["runs"] if run["key"] == owner[1]), None)
    return course, run, True


def advertised_run(course):
    return next((run for run in course["runs"] if run["key"] == course["advertised_run"]), None)


def resolve_for_customer(store, customer_uuid, key):
    """The record a customer-scoped catalog lookup returns for ``key``, or None (a catalog 404)."""
    located = locate(store, key)
    if located is None:
        return None
    course, run, key_is_run = located
    probe = run["key"] if key_is_run else course["course_key"]
    for catalog in store.catalogs_of_customer(customer_uuid):
        if not catalog_contains(store, catalog, probe):
            continue
        keys = set(catalog["content_keys"])
        record_is_run = key_is_run and run["key"] in keys and course["course_key"] not in keys
        return Resolved(course=course, run=run, record_is_run=record_is_run)
    return None


def is_exec_ed(course):
    return course["source"] == SOURCE_2U


def enroll_by_date(course, run):
    """§5.4: verified seats use the upgrade deadline (override first), else the enrollment end."""
    if run is None:
        return None
    if is_exec_ed(course):
        return run["enrollment_end"]
    return run["upgrade_deadline_override"] or run["upgrade_deadline"] or run["enrollment_end"]


def price_cents(run):
    return run["price_cents"] if run else 0


def content_summary(resolved):
    """The subsidy's customer-scoped content summary (§2.3)."""
    course, run = resolved.course, resolved.run
    exec_ed = is_exec_ed(course)
    return {
        "content_title": course["title"],
        "content_uuid": run["uuid"] if resolved.record_is_run else course["course_uuid"],
        "content_key": run["key"] if resolved.record_is_run else course["course_key"],
        "course_run_uuid": run["uuid"] if run else None,
        "course_run_key": run["key"] if run else None,
        "course_run_start_date": run["start"] if run else None,
        "source": course["source"],
        "mode": MODE_EXEC_ED if exec_ed else MODE_VERIFIED,
        "content_price": price_cents(run),
        "enroll_by_date": enroll_by_date(course, run),
        "geag_variant_id": run["variant_id"] if exec_ed and run else None,
    }


# --- raw catalog records --------------------------------------------------------------------------

def _dollars(cents):
    return f"{Decimal(cents) / 100:.2f}"


def _product_source(course):
    if is_exec_ed(course):
        return {"slug": "2u", "name": "2U", "description": "2U, Trilogy, Getsmarter -- external source"}
    return {"slug": "edx", "name": "edX", "description": "edX courses"}


def _normalized(course, run):
    return {
        "start_date": run["start"],
        "end_date": run["end"],
        "enroll_start_date": run["enrollment_start"],
        "enroll_by_date": enroll_by_date(course, run),
        "content_price": float(Decimal(run["price_cents"]) / 100),
    }


def run_record(course, run):
    """A course-run metadata record."""
    mode = MODE_EXEC_ED if is_exec_ed(course) else MODE_VERIFIED
    return {
        "content_type": "courserun",
        "key": run["key"],
        "uuid": run["uuid"],
        "title": run["title"] or course["title"],
        "parent_content_key": course["course_key"],
        "start": run["start"],
        "end": run["end"],
        "enrollment_start": run["enrollment_start"],
        "enrollment_end": run["enrollment_end"],
        "status": "published",
        "availability": "Current",
        "is_enrollable": True,
        "is_marketable": True,
        "seats": [{
            "type": mode,
            "price": _dollars(run["price_cents"]),
            "currency": "USD",
            "upgrade_deadline": run["upgrade_deadline"],
            "upgrade_deadline_override": run["upgrade_deadline_override"],
            "sku": f"SKU-{run['uuid'][:8].upper()}",
        }],
        "first_enrollable_paid_seat_price": int(run["price_cents"] // 100) if run["price_cents"] else None,
        "variant_id": run["variant_id"],
        "product_source": _product_source(course),
    }


def course_record(course):
    """A course metadata record with its runs and the normalized metadata clients read prices from."""
    advertised = advertised_run(course)
    mode = MODE_EXEC_ED if is_exec_ed(course) else MODE_VERIFIED
    return {
        "content_type": "course",
        "key": course["course_key"],
        "uuid": course["course_uuid"],
        "title": course["title"],
        "product_source": _product_source(course),
        "advertised_course_run_uuid": advertised["uuid"] if advertised else None,
        "course_runs": [run_record(course, run) for run in course["runs"]],
        "entitlements": [{
            "mode": mode,
            "price": _dollars(advertised["price_cents"] if advertised else 0),
            "currency": "USD",
            "sku": f"ENT-{course['course_uuid'][:8].upper()}",
        }],
        "normalized_metadata": _normalized(course, advertised) if advertised else {},
        "normalized_metadata_by_run": {run["key"]: _normalized(course, run) for run in course["runs"]},
    }


def raw_record(store, key, *, coerce_to_parent_course=False):
    """The customer-independent metadata record for a course or run key/uuid, or None."""
    located = locate(store, key)
    if located is None:
        return None
    course, run, key_is_run = located
    if key_is_run and not coerce_to_parent_course:
        return run_record(course, run)
    return course_record(course)
