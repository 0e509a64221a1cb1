"""
Admin of records that keep history, with the history read-only.

django-simple-history's row view ("<app>_<model>_simple_history") is also a form: a POST saves the old version
over the record ("revert"), whatever the settings say about showing the Revert button. For the records this
service keeps history of (policies, forced redemptions, assignments), history is the audit trail and an old
version saved back would be a change nobody meant to make: for a forced redemption, it would even erase a
redemption. Here the row view answers GET only; to change a record, change the record.
"""
from django.http import HttpResponseNotAllowed
from simple_history.admin import SimpleHistoryAdmin


class ReadOnlyHistoryAdmin(SimpleHistoryAdmin):
    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            response = HttpResponseNotAllowed(["GET", "HEAD"])
            response.content = b"History rows are read-only: change the record itself."
            return response
        request.viewing_history_row = True  # every field shown as text, not as an input that invites editing
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if getattr(request, "viewing_history_row", False):
            return [*fields, *(f.name for f in self.model._meta.fields if f.name not in fields)]
        return fields

    def revert_disabled(self, request, obj=None):
        return True
