"""
The demo world: one enterprise customer, its learners, catalogs, content and subsidies, with fixed identifiers; and a
second customer ("Other Co", one learner, one catalog, one subsidy, no policy) for checks that one customer cannot
use another's.

``seed_demo`` loads it into the emulator and the service's database; the test suite seeds the same world into
its own emulator, so tests and the demo describe one set of facts. Dates are fixed (not "now + 30 days") so
that seeding twice changes nothing.
"""
CUSTOMER_UUID = "c0ffee00-0000-4000-8000-000000000001"
ADMIN_CONTACT_EMAIL = "learning-admin@demo-co.example"

POLICY_UUIDS = {
    "per_learner_enrollment": "a1b2c3d4-0000-4000-8000-000000000001",
    "per_learner_spend": "a1b2c3d4-0000-4000-8000-000000000002",
    "assigned": "a1b2c3d4-0000-4000-8000-000000000003",
}
SUBSIDY_UUIDS = {
    "per_learner_enrollment": "5b5d1d1e-0000-4000-8000-000000000001",
    "per_learner_spend": "5b5d1d1e-0000-4000-8000-000000000002",
    "assigned": "5b5d1d1e-0000-4000-8000-000000000003",
}
CATALOG_UUIDS = {
    "per_learner_enrollment": "ca7a1060-0000-4000-8000-000000000001",
    "per_learner_spend": "ca7a1060-0000-4000-8000-000000000002",
    "assigned": "ca7a1060-0000-4000-8000-000000000003",
}
# The second customer: its subsidy and catalog are what a policy of the demo customer must not use, and back.
OTHER_CUSTOMER_UUID = "c0ffee00-0000-4000-8000-0000000000ff"
OTHER_SUBSIDY_UUID = "5b5d1d1e-0000-4000-8000-0000000000ff"
OTHER_CATALOG_UUID = "ca7a1060-0000-4000-8000-0000000000ff"
ASSIGNMENT_CONFIGURATION_UUID = "a55e1c0f-0000-4000-8000-000000000003"
STARTING_BALANCE_CENTS = 10_000_000  # $100,000 per subsidy
POLICY_SPEND_LIMIT_CENTS = 5_000_000

ORDINARY_RUNS = [
    "course-v1:DemoU+Cooking101+1T2027",
    "course-v1:DemoU+Gardening201+1T2027",
    "course-v1:DemoU+Poetry301+1T2027",
]
PAST_DEADLINE_RUN = "course-v1:DemoU+History101+1T2025"
EXEC_ED_RUN = "course-v1:ExecEdU+Leadership+1T2027"
NOT_IN_CATALOG_RUN = "course-v1:OtherU+Secret101+1T2027"
PRICES = {
    ORDINARY_RUNS[0]: 19900,
    ORDINARY_RUNS[1]: 14900,
    ORDINARY_RUNS[2]: 9900,
    PAST_DEADLINE_RUN: 12900,
    EXEC_ED_RUN: 250000,
    NOT_IN_CATALOG_RUN: 9900,
}

LEARNERS = [
    {"lms_user_id": 101, "email": "pat@demo-co.example", "username": "pat", "first_name": "Pat", "last_name": "Lee"},
    {"lms_user_id": 102, "email": "sam@demo-co.example", "username": "sam", "first_name": "Sam", "last_name": "Ng"},
    {"lms_user_id": 103, "email": "ana@demo-co.example", "username": "ana", "first_name": "Ana", "last_name": "Ruiz"},
]
UNLINKED_LEARNER = {"lms_user_id": 199, "email": "casey@elsewhere.example", "username": "casey",
                    "first_name": "Casey", "last_name": "Doe"}
OTHER_LEARNER = {"lms_user_id": 4242, "email": "kim@other-co.example", "username": "kim", "first_name": "Kim",
                 "last_name": "Park"}
ASSIGNMENT = {"lms_user_id": 103, "content_key": ORDINARY_RUNS[1]}
EXTRA_LEARNER_FIRST_ID = 10_001
# ``run_demo`` proves its printed request works by making it once for a throwaway learner of its own (then
# reversing it); those learners take ids from here on, far above the load-test learners.
SELF_CHECK_LEARNER_FIRST_ID = 900_000_000

ACTIVE_FROM = "2025-01-01T00:00:00Z"
ACTIVE_UNTIL = "2030-12-31T23:59:59Z"


def extra_learners(count):
    """``count`` more learners linked to the customer (for load tests)."""
    return [
        {"lms_user_id": EXTRA_LEARNER_FIRST_ID + i, "email": f"learner{EXTRA_LEARNER_FIRST_ID + i}@demo-co.example",
         "username": f"learner{EXTRA_LEARNER_FIRST_ID + i}", "first_name": "Load", "last_name": f"Learner {i}"}
        for i in range(count)
    ]


def self_check_learner(number):
    """The throwaway learner ``run_demo``'s self-check redeems for (``number``: one per run, so each starts clean)."""
    lms_user_id = SELF_CHECK_LEARNER_FIRST_ID + number
    return {"lms_user_id": lms_user_id, "email": f"demo-self-check-{lms_user_id}@demo-co.example",
            "username": f"demo-self-check-{lms_user_id}", "first_name": "Demo", "last_name": "Self-Check"}


def linked_learners_seed_document(learners):
    """An emulator seed document that adds ``learners`` to the demo customer and nothing else."""
    return {"learners": [{**learner, "enterprise_customer_uuids": [CUSTOMER_UUID], "enterprise_group_uuids": []}
                         for learner in learners]}


def _run(key, *, start, enrollment_end, upgrade_deadline, variant_id=None):
    return {"key": key, "start": start, "enrollment_end": enrollment_end, "upgrade_deadline": upgrade_deadline,
            "price_cents": PRICES[key], "variant_id": variant_id}


def emulator_seed_document(learner_count=0):
    """The demo world as the emulator's ``POST /_control/seed`` document."""
    linked = LEARNERS + extra_learners(learner_count)
    content = [
        {"course_key": "DemoU+Cooking101", "title": "Cooking for Engineers", "source": "edX",
         "runs": [_run(ORDINARY_RUNS[0], start="2027-01-15T00:00:00Z", enrollment_end="2029-12-31T00:00:00Z",
                       upgrade_deadline="2029-12-31T00:00:00Z")]},
        {"course_key": "DemoU+Gardening201", "title": "Gardening at Scale", "source": "edX",
         "runs": [_run(ORDINARY_RUNS[1], start="2027-02-01T00:00:00Z", enrollment_end="2029-12-31T00:00:00Z",
                       upgrade_deadline="2029-12-31T00:00:00Z")]},
        {"course_key": "DemoU+Poetry301", "title": "Poetry for Programmers", "source": "edX",
         "runs": [_run(ORDINARY_RUNS[2], start="2027-03-01T00:00:00Z", enrollment_end="2029-12-31T00:00:00Z",
                       upgrade_deadline="2029-12-31T00:00:00Z")]},
        {"course_key": "DemoU+History101", "title": "A Short History of Ledgers", "source": "edX",
         "runs": [_run(PAST_DEADLINE_RUN, start="2025-01-10T00:00:00Z", enrollment_end="2025-03-01T00:00:00Z",
                       upgrade_deadline="2025-03-01T00:00:00Z")]},
        {"course_key": "ExecEdU+Leadership", "title": "Leadership Intensive", "source": "2u",
         "runs": [_run(EXEC_ED_RUN, start="2027-04-01T00:00:00Z", enrollment_end="2029-12-31T00:00:00Z",
                       upgrade_deadline=None, variant_id="79a95406-a9ac-49b3-a27c-44f3fd06092e")]},
        {"course_key": "OtherU+Secret101", "title": "Not For Demo Co", "source": "edX",
         "runs": [_run(NOT_IN_CATALOG_RUN, start="2027-01-01T00:00:00Z", enrollment_end="2029-12-31T00:00:00Z",
                       upgrade_deadline="2029-12-31T00:00:00Z")]},
    ]
    in_catalog = ["DemoU+Cooking101", "DemoU+Gardening201", "DemoU+Poetry301", "DemoU+History101",
                  "ExecEdU+Leadership"]
    return {
        "customers": [{"uuid": CUSTOMER_UUID, "name": "Demo Co", "slug": "demo-co", "contact_email": ADMIN_CONTACT_EMAIL,
                       "admin_users": [{"email": "admin@demo-co.example", "lms_user_id": 90}],
                       "enable_data_sharing_consent": False},
                      {"uuid": OTHER_CUSTOMER_UUID, "name": "Other Co", "slug": "other-co",
                       "contact_email": "learning-admin@other-co.example", "admin_users": [],
                       "enable_data_sharing_consent": False}],
        "learners": linked_learners_seed_document(linked)["learners"]
        + [{**UNLINKED_LEARNER, "enterprise_customer_uuids": [], "enterprise_group_uuids": []},
           {**OTHER_LEARNER, "enterprise_customer_uuids": [OTHER_CUSTOMER_UUID], "enterprise_group_uuids": []}],
        "catalogs": [{"uuid": uuid, "enterprise_customer_uuid": CUSTOMER_UUID, "content_keys": in_catalog}
                     for uuid in CATALOG_UUIDS.values()]
        + [{"uuid": OTHER_CATALOG_UUID, "enterprise_customer_uuid": OTHER_CUSTOMER_UUID,
            "content_keys": ["OtherU+Secret101", "DemoU+Cooking101"]}],
        "content": content,
        "subsidies": [{"uuid": uuid, "enterprise_customer_uuid": CUSTOMER_UUID, "title": f"Demo subsidy ({kind})",
                       "starting_balance": STARTING_BALANCE_CENTS, "active_datetime": ACTIVE_FROM,
                       "expiration_datetime": ACTIVE_UNTIL, "unit": "usd_cents"}
                      for kind, uuid in SUBSIDY_UUIDS.items()]
        + [{"uuid": OTHER_SUBSIDY_UUID, "enterprise_customer_uuid": OTHER_CUSTOMER_UUID, "title": "Other Co subsidy",
            "starting_balance": STARTING_BALANCE_CENTS, "active_datetime": ACTIVE_FROM,
            "expiration_datetime": ACTIVE_UNTIL, "unit": "usd_cents"}],
    }
