"""Admin pages of rows that only the service writes (attempt rows, bulk forcing jobs): staff look, nobody edits."""


class WrittenByTheServiceOnly:
    """No add, change or delete in admin: these rows are written by the workflow or an action, and are the record."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
