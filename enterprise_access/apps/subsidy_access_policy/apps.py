from django.apps import AppConfig


class SubsidyAccessPolicyConfig(AppConfig):
    name = "enterprise_access.apps.subsidy_access_policy"
    label = "subsidy_access_policy"
    verbose_name = "Subsidy access policies"
