"""
Admin of bulk forcing (decision record 0019): upload a CSV of forced redemptions for one policy, and follow the
background jobs that force many records.

- ``…/bulkforcingjob/upload/``: the file is read and every row checked and shown, with its errors, before anything
  is saved; "Save" writes one waiting record per row, all or none, only when every row is valid. The file travels
  from the preview to the save signed, so what is saved is what was shown (and it is checked once more).
- A job's page (its change page) shows its progress and refreshes itself until the job is done; its results are a
  CSV download. A stalled job (its worker died) can be run again.

Anyone on staff may look at jobs; uploading, and running a job again, need ``force_redemption``.
"""
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ..bulk_forcing import enqueue, job_counts, results_csv
from ..bulk_upload import UploadRefused, read_upload, save_upload, validate_rows
from ..models import BulkForcingJob, BulkForcingRow, SubsidyAccessPolicy
from .forced_redemption import StaffSeeForcersAct
from .read_only import WrittenByTheServiceOnly

TEMPLATES = "admin/subsidy_access_policy/bulkforcingjob/"
SIGNING_SALT = "enterprise_access.bulk_upload"
ROWS_PER_PAGE = 200
REFRESH_SECONDS = 3


class UploadForm(forms.Form):
    policy = forms.ModelChoiceField(
        queryset=SubsidyAccessPolicy.objects.order_by("display_name", "uuid"),
        help_text="The policy whose funds pay for every row of the file.",
    )
    file = forms.FileField(
        help_text="CSV, UTF-8: a header naming lms_user_id or email, course_run_key and optionally price (USD "
                  "cents; assigned policies only), then one row per redemption.",
    )


def _signer_salt(request, policy) -> str:
    return f"{SIGNING_SALT}:{request.user.pk}:{policy.pk}"


@admin.register(BulkForcingJob)
class BulkForcingJobAdmin(StaffSeeForcersAct, WrittenByTheServiceOnly, admin.ModelAdmin):
    """Jobs are written by the "Force redemption" action; here they are only followed."""

    list_display = ("job_link", "state", "progress", "created_by", "created", "finished_at")
    list_select_related = ("created_by",)
    ordering = ("-created",)
    change_list_template = TEMPLATES + "change_list.html"

    # ----- list -------------------------------------------------------------------------------------

    @admin.display(description="job")
    def job_link(self, obj):
        return format_html('<a href="{}">{}</a>', self._job_url(obj), obj.uuid)

    @admin.display(description="state")
    def state(self, obj):
        return obj.state

    def get_queryset(self, request):
        done = Count("rows", filter=~Q(rows__result=BulkForcingRow.PENDING))
        return super().get_queryset(request).annotate(done=done)

    @admin.display(description="done")
    def progress(self, obj):
        return f"{obj.done} / {obj.total}"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_upload": self.has_force_permission(request)}
        return super().changelist_view(request, extra_context)

    # ----- urls -------------------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="%s_%s_upload" % info),
            path("<path:object_id>/results.csv", self.admin_site.admin_view(self.results_view),
                 name="%s_%s_results" % info),
            path("<path:object_id>/run-again/", self.admin_site.admin_view(self.run_again_view),
                 name="%s_%s_run_again" % info),
        ]
        return own + super().get_urls()

    def _job_url(self, job):
        return reverse("admin:subsidy_access_policy_bulkforcingjob_change", args=[job.pk])

    def _get_job(self, request, object_id) -> BulkForcingJob:
        if not self.has_view_permission(request):
            raise PermissionDenied
        job_uuid = _as_uuid(unquote(object_id))
        job = BulkForcingJob.objects.select_related("created_by").filter(pk=job_uuid).first() if job_uuid else None
        if job is None:
            raise Http404("No such bulk forcing job.")
        return job

    def _render(self, request, template, context):
        request.current_app = self.admin_site.name
        return TemplateResponse(request, TEMPLATES + template, {
            **self.admin_site.each_context(request), "opts": self.opts, **context})

    # ----- the job's page ---------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._get_job(request, object_id)
        counts = job_counts(job)
        rows = (BulkForcingRow.objects.filter(job=job).order_by("position")
                .select_related("forced_redemption__subsidy_access_policy"))
        result_filter = request.GET.get("result")
        if result_filter in {value for value, _ in BulkForcingRow.RESULTS if value}:
            rows = rows.filter(result=result_filter)
        elif result_filter == "pending":
            rows = rows.filter(result=BulkForcingRow.PENDING)
        page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
        labels = dict(BulkForcingRow.RESULTS)
        summary = [{"result": result or "pending", "label": labels.get(result, result), "count": count}
                   for result, count in sorted(counts["by_result"].items())]
        state = job.state
        return self._render(request, "job.html", {
            "title": f"Bulk forcing job {job.uuid}",
            "job": job, "state": state, "counts": counts, "summary": summary, "page": page,
            "percent": int(100 * counts["done"] / job.total) if job.total else 100,
            "refresh_seconds": REFRESH_SECONDS if state in ("queued", "running") else None,
            "may_run_again": self.has_force_permission(request) and state == "stalled",
            "result_filter": result_filter or "",
        })

    def results_view(self, request, object_id):
        job = self._get_job(request, object_id)
        response = HttpResponse(results_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="bulk-forcing-{job.uuid}.csv"'
        return response

    def run_again_view(self, request, object_id):
        """Send a stalled job to a worker again: it continues with the rows that have no result."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_force_permission(request):
            raise PermissionDenied
        job = self._get_job(request, object_id)
        if job.state != "stalled":
            messages.warning(request, f"Job {job.uuid} is {job.state}: it was not sent again.")
        else:
            enqueue(job)
            messages.success(request, f"Job {job.uuid} was sent to a worker again; rows already forced are kept.")
        return HttpResponseRedirect(self._job_url(job))

    # ----- upload -----------------------------------------------------------------------------------

    def upload_view(self, request):
        if not self.has_force_permission(request):
            raise PermissionDenied
        context = {"title": "Upload forced redemptions (CSV)", "max_rows": f"{_max_rows():,}",
                   "max_bytes": _max_bytes()}
        if request.method == "POST" and "_save" in request.POST:
            return self._save(request, context)
        if request.method == "POST":
            form = UploadForm(request.POST, request.FILES)
            if form.is_valid():
                policy, upload = form.cleaned_data["policy"], form.cleaned_data["file"]
                if upload.size > _max_bytes():
                    form.add_error("file", f"The file is {upload.size:,} bytes; the limit is {_max_bytes():,}. "
                                           "Split it into smaller files.")
                else:
                    data = upload.read()
                    try:
                        rows = read_upload(data)
                    except UploadRefused as exc:
                        form.add_error("file", str(exc))
                    else:
                        return self._preview(request, context, form, policy, rows, data.decode("utf-8-sig"),
                                             upload.name)
        else:
            form = UploadForm()
        return self._render(request, "upload.html", {**context, "form": form})

    def _preview(self, request, context, form, policy, rows, text, file_name):
        validate_rows(policy, rows)
        bad = [row for row in rows if row.errors]
        payload = None
        if not bad:
            payload = signing.dumps({"text": text, "name": file_name[:200]}, salt=_signer_salt(request, policy),
                                    compress=True)
        return self._render(request, "upload.html", {
            **context, "form": form if bad else UploadForm(initial={"policy": policy}), "policy": policy,
            "rows": rows, "bad_count": len(bad), "payload": payload, "file_name": file_name, "previewed": True,
        })

    def _save(self, request, context):
        policy_uuid = _as_uuid(request.POST.get("policy"))
        policy = SubsidyAccessPolicy.objects.filter(pk=policy_uuid).first() if policy_uuid else None
        if policy is None:
            messages.error(request, "The policy of that upload no longer exists; nothing was saved.")
            return HttpResponseRedirect(reverse("admin:subsidy_access_policy_bulkforcingjob_upload"))
        try:
            signed = signing.loads(request.POST.get("payload", ""), salt=_signer_salt(request, policy),
                                   max_age=3600)
            rows = read_upload(signed["text"].encode("utf-8"))
        except (signing.BadSignature, UploadRefused, KeyError, TypeError):
            messages.error(request, "That preview is too old or was changed; upload the file again. Nothing was "
                                    "saved.")
            return HttpResponseRedirect(reverse("admin:subsidy_access_policy_bulkforcingjob_upload"))
        validate_rows(policy, rows)
        if any(row.errors for row in rows):
            messages.error(request, "Some rows are no longer valid (shown below); nothing was saved.")
            return self._preview(request, context, UploadForm(initial={"policy": policy}), policy, rows,
                                 signed["text"], signed.get("name", "upload.csv"))
        records = save_upload(policy=policy, rows=rows, acting_user=request.user)
        return self._render(request, "saved.html", {
            **context, "title": "Forced redemptions saved", "policy": policy, "records": records,
            "action_url": reverse("admin:subsidy_access_policy_forcedpolicyredemption_changelist"),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })


def _as_uuid(value):
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _max_rows():
    return settings.BULK_UPLOAD_MAX_ROWS


def _max_bytes():
    return settings.BULK_UPLOAD_MAX_BYTES
