"""Example upstream payloads in the contract's shapes. All values are invented."""
SUBSIDY_UUID = "5e0c0000-0000-4000-8000-0000000000aa"
POLICY_UUID = "a1b2c3d4-0000-4000-8000-000000000002"
CUSTOMER_UUID = "c0ffee00-0000-4000-8000-000000000001"
OTHER_CUSTOMER_UUID = "c0ffee00-0000-4000-8000-000000000099"
CATALOG_UUID = "ca7a1060-0000-4000-8000-000000000003"
TRANSACTION_UUID = "0d6f0c1e-1111-4aaa-9bbb-000000000abc"
RUN_KEY = "course-v1:DemoU+Cooking101+2T2026"
COURSE_KEY = "DemoU+Cooking101"
LMS_USER_ID = 4242

SUBSIDY = {
    "uuid": SUBSIDY_UUID, "title": "Demo credit", "enterprise_customer_uuid": CUSTOMER_UUID,
    "active_datetime": "2026-01-01T00:00:00Z", "expiration_datetime": "2027-01-01T00:00:00Z",
    "unit": "usd_cents", "reference_id": "opp-1", "reference_type": "salesforce_opportunity_line_item",
    "current_balance": 80100, "starting_balance": 100000, "internal_only": False,
    "revenue_category": "bulk-enrollment-prepay", "is_active": True, "total_deposits": 100000,
    "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
}

TRANSACTION = {
    "uuid": TRANSACTION_UUID, "state": "committed",
    "idempotency_key": f"ledger-for-subsidy-{SUBSIDY_UUID}-c7397913ae86db2deb308f929cb69cb2",
    "lms_user_id": LMS_USER_ID, "lms_user_email": "pat@example.org",
    "content_key": RUN_KEY, "parent_content_key": COURSE_KEY, "content_title": "Cooking for Engineers",
    "course_run_start_date": "2026-06-01T00:00:00Z", "quantity": -19900, "unit": "usd_cents",
    "fulfillment_identifier": "9c0f0000-0000-4000-8000-0000000000e1", "subsidy_access_policy_uuid": POLICY_UUID,
    "metadata": {"allow_late_enrollment": True}, "created": "2026-03-02T10:00:00.120000Z",
    "modified": "2026-03-02T10:00:01.480000Z", "reversal": None, "external_reference": [],
    "transaction_status_api_url": f"http://subsidy.local/api/v1/transactions/{TRANSACTION_UUID}/",
    "courseware_url": f"http://learning.local/course/{RUN_KEY}/home",
}

CAN_REDEEM = {"can_redeem": True, "content_price": 19900, "unit": "usd_cents", "active": True,
              "all_transactions": [TRANSACTION]}

CONTENT_SUMMARY = {
    "content_title": "Cooking for Engineers", "content_uuid": "3f1c0000-0000-4000-8000-0000000000e9",
    "content_key": COURSE_KEY, "course_run_uuid": "77aa0000-0000-4000-8000-000000000001",
    "course_run_key": RUN_KEY, "course_run_start_date": "2026-06-01T00:00:00Z", "source": "edX",
    "mode": "verified", "content_price": 19900, "enroll_by_date": "2026-05-25T23:59:59Z", "geag_variant_id": None,
}

AGGREGATES = {"unit": "usd_cents", "remaining_subsidy_balance": 80100, "total_quantity": -19900}


def page(results, *, next_url=None, count=None, **extra):
    """An edx pagination envelope."""
    return {"next": next_url, "previous": None, "count": len(results) if count is None else count,
            "num_pages": 1, "current_page": 1, "start": 0, "results": results, **extra}


def customer(uuid=CUSTOMER_UUID):
    return {"uuid": uuid, "name": "Demo Co", "slug": "demo-co", "active": True,
            "contact_email": "admin@example.org", "admin_users": [{"email": "boss@example.org", "lms_user_id": 1}]}


def learner_record(*, customer_uuid=CUSTOMER_UUID, user_id=LMS_USER_ID, email="pat@example.org", record_id=77):
    return {
        "id": record_id, "active": True, "user_id": user_id, "created": "2025-09-01T12:00:00Z", "invite_key": None,
        "enterprise_customer": customer(customer_uuid),
        "user": {"id": user_id, "username": "pat", "first_name": "Pat", "last_name": "Lee", "email": email,
                 "is_staff": False, "is_active": True, "date_joined": "2025-08-30T09:00:00Z"},
        "data_sharing_consent_records": [], "groups": [], "role_assignments": ["enterprise_learner"],
        "enterprise_group": [],
    }
