"""The seeded world every emulator test starts from (dates relative to the time of import)."""
from datetime import datetime, timedelta, timezone

NOW = datetime.now(timezone.utc)


def iso(delta_days):
    return (NOW + timedelta(days=delta_days)).strftime("%Y-%m-%dT%H:%M:%SZ")


CUSTOMER = "c0ffee00-0000-4000-8000-000000000001"
CUSTOMER_DSC = "c0ffee00-0000-4000-8000-000000000002"  # requires data-sharing consent
CUSTOMER_OTHER = "c0ffee00-0000-4000-8000-000000000003"
CUSTOMER_CROWD = "c0ffee00-0000-4000-8000-000000000004"  # 12 learners, for pagination

CATALOG = "ca7a1000-0000-4000-8000-000000000001"
CATALOG_DSC = "ca7a1000-0000-4000-8000-000000000002"
CATALOG_OTHER = "ca7a1000-0000-4000-8000-000000000003"

SUBSIDY = "5b5d0000-0000-4000-8000-000000000001"  # 1,000,000 cents, active
SUBSIDY_LOW = "5b5d0000-0000-4000-8000-000000000002"  # 30,000 cents
SUBSIDY_EXPIRED = "5b5d0000-0000-4000-8000-000000000003"
SUBSIDY_FUTURE = "5b5d0000-0000-4000-8000-000000000004"
SUBSIDY_DELETED = "5b5d0000-0000-4000-8000-000000000005"
SUBSIDY_DSC = "5b5d0000-0000-4000-8000-000000000006"
SUBSIDY_SPARE = "5b5d0000-0000-4000-8000-000000000007"  # for tests that need a ledger to themselves
UNKNOWN_UUID = "deadbeef-0000-4000-8000-000000000000"

POLICY = "a1b2c3d4-0000-4000-8000-000000000002"
POLICY_OTHER = "a1b2c3d4-0000-4000-8000-000000000003"
GROUP = "9a9a9a9a-0000-4000-8000-000000000001"

COOKING = "DemoU+Cooking101"
COOKING_RUN = "course-v1:DemoU+Cooking101+2T2026"  # 19,900, deadline in the future
COOKING_OLD_RUN = "course-v1:DemoU+Cooking101+1T2025"  # 15,000, enrollment closed
BAKING = "DemoU+Baking201"
BAKING_RUN = "course-v1:DemoU+Baking201+1T2026"  # in CATALOG as a run on its own
BAKING_OTHER_RUN = "course-v1:DemoU+Baking201+2T2026"  # not in any catalog
FREE_RUN = "course-v1:DemoU+Free001+1T2026"  # price 0
EXEC = "ExecU+Leadership"
EXEC_RUN = "course-v1:ExecU+Leadership+1T2026"  # 2u, 250,000, has a variant
EXEC_NO_VARIANT = "ExecU+Strategy"
EXEC_NO_VARIANT_RUN = "course-v1:ExecU+Strategy+1T2026"
GHOST = "course-v1:Nowhere+Nothing+1T2026"  # seeded content that no catalog holds
OTHER_COURSE = "OtherU+Thing"

PAT, SAM, ALEX = 101, 102, 103  # Pat and Sam in CUSTOMER (Sam also in CUSTOMER_DSC), Alex in OTHER

EXEC_METADATA = {
    "geag_first_name": "Pat",
    "geag_last_name": "Lee",
    "geag_email": "pat@example.org",
    "geag_date_of_birth": "1990-04-01",
    "geag_terms_accepted_at": "2026-03-02T10:00:00Z",
}

SEED = {
    "customers": [
        {"uuid": CUSTOMER, "name": "Demo Co", "slug": "demo-co", "contact_email": None,
         "admin_users": [{"email": "admin@demo.example", "lms_user_id": 900}]},
        {"uuid": CUSTOMER_DSC, "name": "Consent Co", "slug": "consent-co", "contact_email": "help@consent.example",
         "enable_data_sharing_consent": True},
        {"uuid": CUSTOMER_OTHER, "name": "Other Co", "slug": "other-co"},
        {"uuid": CUSTOMER_CROWD, "name": "Crowd Co", "slug": "crowd-co"},
    ],
    "learners": [
        {"lms_user_id": PAT, "email": "pat@example.org", "username": "pat", "first_name": "Pat", "last_name": "Lee",
         "enterprise_customer_uuids": [CUSTOMER]},
        {"lms_user_id": SAM, "email": "sam@example.org", "username": "sam", "first_name": "Sam", "last_name": "Roe",
         "enterprise_customer_uuids": [CUSTOMER, CUSTOMER_DSC], "enterprise_group_uuids": [GROUP]},
        {"lms_user_id": ALEX, "email": "alex@example.org", "username": "alex",
         "enterprise_customer_uuids": [CUSTOMER_OTHER]},
        *[{"lms_user_id": 500 + index, "email": f"crowd{index}@example.org", "username": f"crowd{index}",
           "enterprise_customer_uuids": [CUSTOMER_CROWD]} for index in range(12)],
    ],
    "catalogs": [
        {"uuid": CATALOG, "enterprise_customer_uuid": CUSTOMER,
         "content_keys": [COOKING, BAKING_RUN, EXEC, EXEC_NO_VARIANT, "DemoU+Free001"]},
        {"uuid": CATALOG_DSC, "enterprise_customer_uuid": CUSTOMER_DSC, "content_keys": [EXEC]},
        {"uuid": CATALOG_OTHER, "enterprise_customer_uuid": CUSTOMER_OTHER, "content_keys": [OTHER_COURSE]},
    ],
    "content": [
        {"course_key": COOKING, "title": "Cooking for Engineers", "source": "edX", "advertised_run": COOKING_RUN,
         "runs": [
             {"key": COOKING_OLD_RUN, "start": iso(-400), "enrollment_end": iso(-300), "upgrade_deadline": iso(-310),
              "price_cents": 15000},
             {"key": COOKING_RUN, "start": iso(30), "enrollment_end": iso(60), "upgrade_deadline": iso(20),
              "price_cents": 19900},
         ]},
        {"course_key": BAKING, "title": "Baking Basics", "runs": [
            {"key": BAKING_RUN, "start": iso(10), "enrollment_end": iso(40), "upgrade_deadline": None,
             "price_cents": 5000},
            {"key": BAKING_OTHER_RUN, "start": iso(100), "enrollment_end": iso(140), "upgrade_deadline": None,
             "upgrade_deadline_override": iso(90), "price_cents": 5000},
        ]},
        {"course_key": "DemoU+Free001", "title": "Free Stuff", "runs": [
            {"key": FREE_RUN, "start": iso(5), "enrollment_end": iso(50), "price_cents": 0}]},
        {"course_key": EXEC, "title": "Leadership for Executives", "source": "2u", "runs": [
            {"key": EXEC_RUN, "start": iso(15), "enrollment_end": iso(12), "upgrade_deadline": iso(1),
             "price_cents": 250000, "variant_id": "79a95406-a9ac-49b3-a27c-44f3fd06092e"}]},
        {"course_key": EXEC_NO_VARIANT, "title": "Strategy", "source": "2u", "runs": [
            {"key": EXEC_NO_VARIANT_RUN, "start": iso(15), "enrollment_end": iso(12), "price_cents": 100000}]},
        {"course_key": "Nowhere+Nothing", "title": "Ghost", "runs": [
            {"key": GHOST, "start": iso(15), "enrollment_end": iso(12), "price_cents": 100}]},
        {"course_key": OTHER_COURSE, "title": "Other Thing", "runs": [
            {"key": "course-v1:OtherU+Thing+1T2026", "start": iso(15), "enrollment_end": iso(20),
             "price_cents": 700}]},
    ],
    "subsidies": [
        {"uuid": SUBSIDY, "enterprise_customer_uuid": CUSTOMER, "title": "Main", "starting_balance": 1_000_000,
         "active_datetime": iso(-30), "expiration_datetime": iso(300), "reference_id": "OPP-1"},
        {"uuid": SUBSIDY_LOW, "enterprise_customer_uuid": CUSTOMER, "title": "Low", "starting_balance": 30_000,
         "active_datetime": iso(-30), "expiration_datetime": iso(300)},
        {"uuid": SUBSIDY_EXPIRED, "enterprise_customer_uuid": CUSTOMER, "title": "Expired",
         "starting_balance": 1_000_000, "active_datetime": iso(-300), "expiration_datetime": iso(-1)},
        {"uuid": SUBSIDY_FUTURE, "enterprise_customer_uuid": CUSTOMER, "title": "Future",
         "starting_balance": 1_000_000, "active_datetime": iso(1), "expiration_datetime": iso(300)},
        {"uuid": SUBSIDY_DELETED, "enterprise_customer_uuid": CUSTOMER, "title": "Deleted",
         "starting_balance": 1_000_000, "soft_deleted": True},
        {"uuid": SUBSIDY_DSC, "enterprise_customer_uuid": CUSTOMER_DSC, "title": "Consent",
         "starting_balance": 1_000_000, "active_datetime": iso(-30), "expiration_datetime": iso(300)},
        {"uuid": SUBSIDY_SPARE, "enterprise_customer_uuid": CUSTOMER, "title": "Spare",
         "starting_balance": 1_000_000, "active_datetime": iso(-30), "expiration_datetime": iso(300)},
    ],
}
