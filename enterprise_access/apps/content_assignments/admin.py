from django.contrib import admin

from enterprise_access.apps.core.history_admin import ReadOnlyHistoryAdmin

from .models import AssignmentConfiguration, LearnerContentAssignment


@admin.register(AssignmentConfiguration)
class AssignmentConfigurationAdmin(ReadOnlyHistoryAdmin):
    list_display = ("uuid", "enterprise_customer_uuid", "active", "created")
    list_filter = ("active",)
    search_fields = ("=uuid", "=enterprise_customer_uuid")


@admin.register(LearnerContentAssignment)
class LearnerContentAssignmentAdmin(ReadOnlyHistoryAdmin):
    list_display = ("uuid", "learner_email", "lms_user_id", "content_key", "content_quantity", "state", "modified")
    list_filter = ("state",)
    search_fields = ("=uuid", "learner_email", "=lms_user_id", "content_key", "=transaction_uuid")
    list_select_related = ("assignment_configuration",)
    raw_id_fields = ("assignment_configuration",)
    readonly_fields = ("transaction_uuid", "allocated_at", "accepted_at", "cancelled_at", "expired_at", "errored_at",
                       "reversed_at", "created", "modified")
