from django.apps import AppConfig


class ContentAssignmentsConfig(AppConfig):
    name = "enterprise_access.apps.content_assignments"
    label = "content_assignments"
    verbose_name = "Content assignments"
