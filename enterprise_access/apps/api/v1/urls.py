"""Version 1 of the API."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from .views.learner_credit import CanRedeemView, CreditsAvailableView
from .views.policies import SubsidyAccessPolicyViewSet
from .views.redeem import PolicyRedeemView
from .views.redemption_attempts import RedemptionAttemptViewSet

router = SimpleRouter()
router.register("subsidy-access-policies", SubsidyAccessPolicyViewSet, basename="subsidy-access-policy")
router.register("redemption-attempts", RedemptionAttemptViewSet, basename="redemption-attempt")

urlpatterns = [
    # <str:...>, not <uuid:...>: a malformed uuid must answer 400 (bad input), not 404.
    path("policy-redemption/credits_available/", CreditsAvailableView.as_view(), name="credits-available"),
    path("policy-redemption/enterprise-customer/<str:customer_uuid>/can-redeem/", CanRedeemView.as_view(),
         name="can-redeem"),
    path("policy-redemption/<str:policy_uuid>/redeem/", PolicyRedeemView.as_view(), name="policy-redeem"),
    *router.urls,
]
