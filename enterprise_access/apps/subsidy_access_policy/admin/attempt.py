"""
Read-only admin of RedemptionAttempt, built to stay fast on a table of millions of rows:
no full count (a capped count instead), no joins or per-row queries in the list (policy names come in one query
per page), filters from constants rather than SELECT DISTINCT, sorting by start time only, and searches on indexed
columns only (plain exact matches, or DjangoQL over the indexed columns: ``attempt_search``).

The list answers "why" at a glance (``attempt_display``): short outcome labels, one "why" column, and the learner,
policy, content and outcome within a 1366 px wide screen. The summary page draws the list's current filters as
charts, from the same aggregation as the REST summary (``selectors.attempt_summary``).
"""
import re
from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import IGNORED_PARAMS
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from djangoql.admin import DJANGOQL_SEARCH_MARKER, DjangoQLChangeList, DjangoQLSearchMixin

from .. import constants as c
from ..models import RedemptionAttempt, SubsidyAccessPolicy
from ..selectors import attempt_summary
from . import charts
from .attempt_display import OUTCOME_COLORS, outcome_color, outcome_label, source_label, why
from .attempt_search import AttemptQLSchema
from .read_only import WrittenByTheServiceOnly

COUNT_CAP = 10_000
# With no date filter, the charts cover this many days up to today.
DEFAULT_CHART_DAYS = 30
# A search term that is one bare value (a number, a uuid, a course key) rather than a DjangoQL expression.
BARE_TERM = re.compile(r"^[^\s=<>~\"'()]+$")


def breakable(text: str, after: str):
    """``text`` escaped, with a line-break opportunity after each of the characters in ``after``: long course keys
    and codes wrap at their separators rather than widen the table or break mid-word."""
    pieces = re.split(f"(?<=[{re.escape(after)}])", text)
    return format_html_join(mark_safe("<wbr>"), "{}", ((piece,) for piece in pieces))


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: the page links stay useful and the count stays cheap."""

    @cached_property
    def count(self):
        return self.object_list.order_by()[: COUNT_CAP + 1].count()


class ShortLabelFilter(admin.SimpleListFilter):
    """A filter on a column of codes, listed with the short labels the list shows."""

    codes = ()

    def label(self, code):
        return code

    def lookups(self, request, model_admin):
        return [(code, self.label(code)) for code in self.codes]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.parameter_name: self.value()}) if self.value() else queryset


class OutcomeFilter(ShortLabelFilter):
    title = "outcome"
    parameter_name = "outcome"
    codes = c.AttemptOutcome.values

    def label(self, code):
        return outcome_label(code)


class ReasonFilter(ShortLabelFilter):
    title = "reason"
    parameter_name = "reason"
    codes = c.ALL_REASONS

    def label(self, code):
        return code.replace("_", "_\u200b")  # a long code wraps at its underscores in the narrow filter column


class SourceFilter(ShortLabelFilter):
    title = "source"
    parameter_name = "source"
    codes = c.AttemptSource.values

    def label(self, code):
        return source_label(code)


class SummaryChangeList(DjangoQLChangeList):
    """The list's filters and search applied, without fetching or counting a page: the charts need the queryset."""

    def get_results(self, request):
        self.result_list, self.result_count, self.full_result_count = [], 0, None
        self.can_show_all, self.multi_page = False, False


@admin.register(RedemptionAttempt)
class RedemptionAttemptAdmin(WrittenByTheServiceOnly, DjangoQLSearchMixin, admin.ModelAdmin):
    change_list_template = "admin/subsidy_access_policy/redemptionattempt/change_list.html"
    list_display = ("started", "outcome_badge", "why", "learner", "content", "policy_name", "source_short",
                    "transaction")
    list_display_links = ("started",)
    sortable_by = ("started",)
    list_filter = (OutcomeFilter, ReasonFilter, SourceFilter, ("started_at", admin.DateFieldListFilter))
    # Plain search (the "Advanced search" box unticked, or one bare value): exact matches on indexed columns.
    search_fields = ("=lms_user_id", "=content_key", "=policy_uuid", "=transaction_uuid", "=uuid", "=request_id")
    search_help_text = mark_safe(  # noqa: S308 (a constant)
        'A learner id, content key, policy, transaction or attempt uuid; or a query on indexed columns, e.g. '
        '<code>outcome = "subsidy_refused" and started_at &gt; "2026-11-01"</code>, '
        '<code>error_code in ("timeout", "http_503")</code>, <code>content_key startswith "course-v1:DemoU"</code>.')
    djangoql_schema = AttemptQLSchema
    djangoql_completion_enabled_by_default = True
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    ordering = ("-started_at",)
    readonly_fields = ("why", "policy_link", "policy_history_link", "forced_redemption_link", "assignment_link")
    fieldsets = (
        ("Inputs", {"fields": ("uuid", "policy_link", "policy_uuid", "enterprise_customer_uuid", "lms_user_id",
                               "content_key", "assignment_link", "subsidy_request_uuid", "forced_redemption_link",
                               "request_metadata")}),
        ("Who and how", {"fields": ("source", "acting_user", "request_id")}),
        ("Policy at that moment", {"fields": ("policy_history_link",)}),
        ("Eligibility", {"fields": ("can_redeem", "reason")}),
        ("Subsidy answer", {"fields": ("outcome", "why", "already_redeemed", "transaction_uuid", "transaction_state",
                                       "fulfillment_identifier", "external_references", "content_price",
                                       "error_status", "error_code", "error_message", "error_payload")}),
        ("Timings", {"fields": ("started_at", "finished_at", "can_redeem_ms", "subsidy_call_ms")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)

    # ----- search -------------------------------------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        """DjangoQL, unless the term is one bare value (a learner id, a uuid, a key): that is looked up as is."""
        term = search_term.strip()
        if term and self.djangoql_search_enabled(request) and BARE_TERM.match(term):
            return admin.ModelAdmin.get_search_results(self, request, queryset, term)
        return super().get_search_results(request, queryset, search_term)

    # ----- the list -----------------------------------------------------------------------------------

    def get_changelist_instance(self, request):
        """Fetch the page once, then the names of its policies in one query (no join, no query per row)."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluates the page's queryset; the template reuses its cache
        names = dict(SubsidyAccessPolicy.objects.filter(uuid__in={row.policy_uuid for row in rows})
                     .values_list("uuid", "display_name"))
        for row in rows:
            row.policy_display_name = names.get(row.policy_uuid)
        changelist.count_cap = COUNT_CAP
        changelist.count_capped = changelist.result_count > COUNT_CAP
        return changelist

    @admin.display(description="started (UTC)", ordering="started_at")
    def started(self, obj):
        started = timezone.localtime(obj.started_at)
        return format_html('<span title="{} (attempt {})">{}</span>', started.isoformat(), obj.uuid,
                           started.strftime("%Y-%m-%d %H:%M"))

    @admin.display(description="outcome")
    def outcome_badge(self, obj):
        return format_html('<span class="attempt-outcome" style="background:{}" title="{}">{}</span>',
                           outcome_color(obj.outcome), obj.get_outcome_display(), outcome_label(obj.outcome))

    @admin.display(description="why")
    def why(self, obj):
        text = why(obj)
        if not text:
            return "already redeemed" if obj.already_redeemed else ""
        # Service, status and code each stay whole; the line breaks between them (inside a very long code only).
        words = format_html_join(" ", '<span class="nowrap">{}</span>',
                                 ((breakable(word, "_") if len(word) > 24 else word,) for word in text.split(" ")))
        return format_html('<span class="attempt-why" title="{}">{}</span>', obj.error_message or text, words)

    @admin.display(description="learner")
    def learner(self, obj):
        url = reverse("admin:subsidy_access_policy_redemptionattempt_changelist")
        return format_html('<a href="{}?lms_user_id={}" title="Attempts of LMS user {}">{}</a>', url,
                           obj.lms_user_id, obj.lms_user_id, obj.lms_user_id)

    @admin.display(description="content")
    def content(self, obj):
        return breakable(obj.content_key, ":+")

    @admin.display(description="policy")
    def policy_name(self, obj):
        name = getattr(obj, "policy_display_name", None)
        url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[obj.policy_uuid])
        label = name or str(obj.policy_uuid)[:8]
        return format_html('<a href="{}" title="{}">{}</a>', url, obj.policy_uuid, label)

    @admin.display(description="source")
    def source_short(self, obj):
        return format_html('<span title="{}">{}</span>', obj.get_source_display(), source_label(obj.source))

    @admin.display(description="transaction")
    def transaction(self, obj):
        if not obj.transaction_uuid:
            return ""
        return format_html('<span class="attempt-uuid" title="{}">{}</span>', obj.transaction_uuid,
                           str(obj.transaction_uuid)[:8])

    # ----- the change page's links: built from the ids on the row itself -----------------------------

    @admin.display(description="policy")
    def policy_link(self, obj):
        url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[obj.policy_uuid])
        return format_html('<a href="{}">{}</a>', url, obj.policy_uuid)

    @admin.display(description="policy as it was (history row)")
    def policy_history_link(self, obj):
        """The policy's history row in force when the attempt started, opened in simple_history's row view."""
        if not obj.policy_history_id:
            return "-"
        history = SubsidyAccessPolicy.history.model
        if not history.objects.filter(history_id=obj.policy_history_id, uuid=obj.policy_uuid).exists():
            return f"history row {obj.policy_history_id} (no longer stored)"
        # django-simple-history names its row view "<app>_<model>_simple_history".
        url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_simple_history",
                      args=[obj.policy_uuid, obj.policy_history_id])
        return format_html('<a href="{}">history row {}</a>', url, obj.policy_history_id)

    @admin.display(description="forced redemption")
    def forced_redemption_link(self, obj):
        if not obj.forced_redemption_id:
            return "-"
        url = reverse("admin:subsidy_access_policy_forcedpolicyredemption_change", args=[obj.forced_redemption_id])
        return format_html('<a href="{}">{}</a>', url, obj.forced_redemption_id)

    @admin.display(description="assignment")
    def assignment_link(self, obj):
        if not obj.assignment_id:
            return "-"
        url = reverse("admin:content_assignments_learnercontentassignment_change", args=[obj.assignment_id])
        return format_html('<a href="{}">{}</a>', url, obj.assignment_id)

    # ----- the charts ---------------------------------------------------------------------------------

    def get_urls(self):
        summary = path("summary/", self.admin_site.admin_view(self.summary_view),
                       name="subsidy_access_policy_redemptionattempt_summary")
        return [summary, *super().get_urls()]

    def summary_view(self, request):
        """Charts of the attempts the list shows for the same filters and search (its query string)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        search = request.GET.get("q", "").strip()
        filters = [(key, value) for key, value in request.GET.items() if key not in IGNORED_PARAMS
                   and key != DJANGOQL_SEARCH_MARKER]
        query = request.GET.urlencode()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Redemption attempts: outcomes per day",
            "filters": filters,
            "search": search,
            "list_url": reverse("admin:subsidy_access_policy_redemptionattempt_changelist")
                        + (f"?{query}" if query else ""),
        }
        request.current_app = self.admin_site.name
        template = "admin/subsidy_access_policy/redemptionattempt/summary.html"
        try:
            queryset = self.summary_changelist(request).queryset
        except IncorrectLookupParameters as exc:
            context["error"] = f"These filters are not valid here ({exc}); change them in the list and try again."
            return TemplateResponse(request, template, context, status=400)

        # With no date filter, the last DEFAULT_CHART_DAYS days: a bar per day stays readable, the query bounded.
        dated = any(key.startswith("started_at") for key, _ in filters) or "started_at" in search
        first = last = created_after = None
        if not dated:
            last = timezone.localdate()
            first = last - timedelta(days=DEFAULT_CHART_DAYS - 1)
            created_after = timezone.make_aware(datetime.combine(first, time.min))
        else:
            first, last = self.filtered_days(request)
        summary = attempt_summary(queryset=queryset, created_after=created_after, group_by="day",
                                  with_error_codes=True)
        context.update({
            "summary": summary,
            "default_window_days": None if dated else DEFAULT_CHART_DAYS,
            "outcomes_chart": charts.outcomes_per_day_svg(summary, first=first, last=last),
            "reasons_chart": charts.top_counts_svg(
                summary["by_reason"], title="Top reasons (can_redeem said no)",
                color=OUTCOME_COLORS[c.AttemptOutcome.NOT_REDEEMABLE], css_class="chart-top-reasons"),
            "errors_chart": charts.top_counts_svg(
                summary["by_error_code"], title="Top error codes",
                color=OUTCOME_COLORS[c.AttemptOutcome.SUBSIDY_REFUSED], css_class="chart-top-errors"),
        })
        return TemplateResponse(request, template, context)

    def summary_changelist(self, request):
        return SummaryChangeList(
            request, self.model, self.get_list_display(request), self.get_list_display_links(request, []),
            self.get_list_filter(request), self.date_hierarchy, self.get_search_fields(request),
            self.get_list_select_related(request), self.list_per_page, self.list_max_show_all, self.list_editable,
            self, self.get_sortable_by(request), self.search_help_text,
        )

    @staticmethod
    def filtered_days(request):
        """The first and last day of the list's date filter (None where open: the chart uses the data's days)."""
        def day(key):
            try:
                return date.fromisoformat(request.GET.get(key, "")[:10])
            except ValueError:
                return None

        since, until = day("started_at__gte"), day("started_at__lt")
        last = min(until - timedelta(days=1), timezone.localdate()) if until else None
        return since, last
