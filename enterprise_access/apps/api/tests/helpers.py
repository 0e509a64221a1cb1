"""Test helpers: signed tokens and API clients carrying them."""
from rest_framework.test import APIClient

from enterprise_access.devtools.demo import CUSTOMER_UUID
from enterprise_access.devtools.tokens import mint_jwt

OPERATOR_ROLE = "enterprise_openedx_operator:*"


def learner_role(customer_uuid=CUSTOMER_UUID):
    return f"enterprise_learner:{customer_uuid}"


def admin_role(customer_uuid=CUSTOMER_UUID):
    return f"enterprise_admin:{customer_uuid}"


def client_with_token(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"JWT {token}")
    return client


def client_for(lms_user_id, roles=(), **claims) -> APIClient:
    return client_with_token(mint_jwt(lms_user_id=lms_user_id, roles=list(roles), **claims))


def learner_client(lms_user_id=101, customer_uuid=CUSTOMER_UUID):
    return client_for(lms_user_id, [learner_role(customer_uuid)])


def operator_client(lms_user_id=900):
    return client_for(lms_user_id, [OPERATOR_ROLE])


def redeem_url(policy_uuid):
    return f"/api/v1/policy-redemption/{policy_uuid}/redeem/"
