"""CSV upload of forced redemptions: the file, every row's checks, the preview, and the all-or-nothing save."""
import re
from html import escape, unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from enterprise_access.apps.subsidy_access_policy import bulk_upload
from enterprise_access.apps.subsidy_access_policy.bulk_upload import (
    EXEC_ED_REFUSAL,
    UploadRefused,
    read_upload,
    validate_rows,
)
from enterprise_access.apps.subsidy_access_policy.models import ForcedPolicyRedemption

from .admin_world import person
from .factories import ForcedRedemptionFactory

pytestmark = pytest.mark.django_db(databases=["default", "independent"])

UPLOAD_URL = "admin:subsidy_access_policy_bulkforcingjob_upload"


def csv_bytes(*lines):
    return ("\n".join(lines) + "\n").encode("utf-8")


def errors_of(policy, *lines):
    rows = validate_rows(policy, read_upload(csv_bytes(*lines)))
    return {row.line: row.errors for row in rows}


# ----- the file as a whole ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, says", [
    (b"", "The file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
    ("lms_user_id,course_run_key\n101,caf\xe9\n".encode("latin-1"), "not UTF-8"),
    (b"user,run\n101,course-v1:A+B+C\n", "Unknown column(s) 'user', 'run'"),
    (b"course_run_key\ncourse-v1:A+B+C\n", "needs a learner column"),
    (b"lms_user_id\n101\n", "needs a course_run_key column"),
    (b"lms_user_id,lms_user_id,course_run_key\n1,1,course-v1:A+B+C\n", "appear more than once"),
    (b"lms_user_id,course_run_key\n", "a header but no rows"),
    (b'lms_user_id,course_run_key\n101,"course-v1:A+B+C\n', "not valid CSV"),
])
def test_unusable_files_are_refused_with_what_to_fix(data, says):
    with pytest.raises(UploadRefused, match=None) as refused:
        read_upload(data)
    assert says in str(refused.value)


def test_row_and_size_caps(settings):
    settings.BULK_UPLOAD_MAX_ROWS = 3
    lines = ["lms_user_id,course_run_key"] + [f"{101 + i},course-v1:DemoU+Cooking101+1T2027" for i in range(4)]
    with pytest.raises(UploadRefused, match="more than 3 rows"):
        read_upload(csv_bytes(*lines))
    assert len(read_upload(csv_bytes(*lines[:4]))) == 3
    settings.BULK_UPLOAD_MAX_BYTES = 50
    with pytest.raises(UploadRefused, match="the limit is 50"):
        read_upload(csv_bytes(*lines))


def test_excel_bom_blank_lines_and_header_case_are_accepted():
    rows = read_upload(b"\xef\xbb\xbfLMS_User_ID, Course_Run_Key\r\n101,course-v1:DemoU+Cooking101+1T2027\r\n,\r\n\r\n")
    assert [(row.line, row.lms_user_id_text, row.course_run_key) for row in rows] == [
        (2, "101", "course-v1:DemoU+Cooking101+1T2027")]


# ----- every row -------------------------------------------------------------------------------------------------

def test_each_row_says_what_is_wrong(policy_world, upstream):
    policy = policy_world()
    ok_run, other_run = upstream.runs[0], upstream.runs[1]
    errors = errors_of(
        policy,
        "lms_user_id,email,course_run_key,price",
        f"101,,{ok_run},",                                      # 2 fine
        f",sam@demo-co.example,{ok_run},",                       # 3 fine: resolved by email
        f"0,,{ok_run},",                                         # 4 out of range
        f"2147483648,,{ok_run},",                                # 5 out of range
        f"{upstream.unlinked_learner['lms_user_id']},,{ok_run},",  # 6 not this enterprise's learner
        f",nobody@demo-co.example,{ok_run},",                    # 7 unknown email
        f"101,pat@demo-co.example,{ok_run},",                    # 8 both
        f"101,,{upstream.not_in_catalog_run},",                  # 9 not in the policy's catalog
        "101,,course-v1:Nobody+Knows+This,",                     # 10 unknown to the catalog
        f"101,,{upstream.exec_ed_run},",                         # 11 exec-ed
        f"101,,{ok_run},",                                       # 12 duplicate of line 2
        f"102,,{other_run},19900",                               # 13 a price on a catalog-price policy
        "=cmd|' /C calc'!A0,,course-v1:A+B+C,",                  # 14 formula
        "101,,@SUM(A1),",                                        # 15 formula in the run
        "abc,,not-a-key,",                                       # 16 not a number, not a run key
        f",{'x' * 10},{other_run},",                             # 17 not an email
        f"103,,{other_run}",                                     # 18 a cell short
        f",=1+1@evil.example,{other_run},",                      # 19 a formula as an email
        f",{upstream.unlinked_learner['email']},{other_run},",    # 20 another enterprise's learner, by email
    )
    assert errors[2] == [] and errors[3] == []
    assert "out of range" in errors[4][0] and "out of range" in errors[5][0]
    assert errors[6] == ["lms_user_id 199 is not a learner of this policy's enterprise."]
    assert "no learner with email nobody@demo-co.example" in errors[7][0]
    assert errors[8] == ["fill lms_user_id or email, not both."]
    assert errors[9] == [f"course run {upstream.not_in_catalog_run} is not in this policy's catalog."]
    assert errors[10] == ["the catalog does not know course run course-v1:Nobody+Knows+This."]
    assert errors[11] == [EXEC_ED_REFUSAL + "."]
    assert errors[12] == [f"duplicate of line 2: learner 101 and run {ok_run} appear twice in the file."]
    assert errors[13] == ["leave price empty: this policy pays the course's catalog price."]
    assert "spreadsheet formula" in errors[14][0]
    assert "spreadsheet formula" in errors[15][0]
    assert len(errors[16]) == 2 and "not a whole number" in errors[16][0] and "not a course run key" in errors[16][1]
    assert "is not an email address" in errors[17][0]
    assert "has 3 cells; the header has 4." in errors[18]
    assert errors[19] == ["email looks like a spreadsheet formula; give the address itself."]
    assert errors[20] == [f"no learner with email {upstream.unlinked_learner['email']} is linked to this policy's "
                          "enterprise."]


def test_a_learner_is_resolved_by_email_to_their_id(policy_world, upstream):
    rows = validate_rows(policy_world(), read_upload(csv_bytes("email,course_run_key",
                                                              f"SAM@demo-co.example,{upstream.runs[0]}")))
    assert rows[0].errors == [] and rows[0].lms_user_id == 102


def test_assigned_policies_need_a_sane_price(policy_world, upstream):
    policy = policy_world("assigned")
    run = upstream.runs[0]  # 19900 cents
    errors = errors_of(policy, "lms_user_id,course_run_key,price",
                       f"101,{run},", f"102,{run},19900", f"103,{run},99999", f"101,{upstream.runs[1]},199.00",
                       f"102,{upstream.runs[1]},-5", f"103,{upstream.runs[2]},100000001")
    assert "price is required" in errors[2][0]
    assert errors[3] == []
    assert "outside 80-120 % of the catalog price 19900" in errors[4][0]
    assert "not a whole number of USD cents" in errors[5][0]
    assert "spreadsheet formula" in errors[6][0]
    assert "out of range" in errors[7][0]


def test_a_learner_and_run_already_forced_under_the_policy_is_refused(policy_world, upstream):
    policy = policy_world()
    existing = ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=101, course_run_key=upstream.runs[0],
                                       wait_to_redeem=True)
    errors = errors_of(policy, "lms_user_id,course_run_key", f"101,{upstream.runs[0]}")
    assert errors[2] == [f"forced redemption {existing.uuid} (waiting) already exists for this learner and run under "
                         "this policy; force that one instead."]
    # Another policy's record is no obstacle.
    other = policy_world("per_learner_spend")
    assert errors_of(other, "lms_user_id,course_run_key", f"101,{upstream.runs[0]}")[2] == []


def test_an_lms_outage_is_a_row_error_never_a_crash(policy_world, upstream):
    upstream.control.add_fault("lms", "enterprise-learner", status=503)
    errors = errors_of(policy_world(), "lms_user_id,course_run_key", f"101,{upstream.runs[0]}")
    assert errors[2] == ["learner could not be checked: the lms service did not answer as expected (try the upload "
                         "again)."]


# ----- the admin pages -------------------------------------------------------------------------------------------

@pytest.fixture
def superuser(client):
    user = person(superuser=True)
    client.force_login(user)
    return user


def upload(client, policy, data, name="learners.csv"):
    return client.post(reverse(UPLOAD_URL), {"policy": str(policy.pk), "file": SimpleUploadedFile(name, data)})


def test_upload_form_opens_for_forcers_and_is_403_for_view_only_staff(client, policy_world):
    policy = policy_world()
    viewer = person(view_only=True)
    client.force_login(viewer)
    assert client.get(reverse(UPLOAD_URL)).status_code == 403
    assert upload(client, policy, csv_bytes("lms_user_id,course_run_key", "101,course-v1:A+B+C")).status_code == 403
    assert client.post(reverse(UPLOAD_URL), {"_save": "1", "policy": str(policy.pk), "payload": "x"}).status_code == 403
    forced_list = reverse("admin:subsidy_access_policy_forcedpolicyredemption_changelist")
    assert b"bulk-upload-link" not in client.get(forced_list).content
    client.force_login(person(may_force=True))
    response = client.get(reverse(UPLOAD_URL))
    assert response.status_code == 200 and b"bulk-upload-form" in response.content
    assert reverse(UPLOAD_URL).encode() in client.get(forced_list).content  # the list offers the upload
    assert ForcedPolicyRedemption.objects.count() == 0


def test_preview_with_errors_saves_nothing_and_offers_no_save(client, superuser, policy_world, upstream):
    policy = policy_world()
    response = upload(client, policy, csv_bytes("lms_user_id,course_run_key", f"101,{upstream.runs[0]}",
                                                f"101,{upstream.exec_ed_run}"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 row cannot be saved" in html and escape(EXEC_ED_REFUSAL) in html
    assert 'name="_save"' not in html and 'name="payload"' not in html
    assert ForcedPolicyRedemption.objects.count() == 0


@pytest.mark.parametrize("data", [b"\xff\xfe\x00\x01", b"a,b\n1,2\n"])
def test_bad_files_answer_the_form_with_a_message(client, superuser, policy_world, data):
    response = upload(client, policy_world(), data, name="photo.png")
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert ForcedPolicyRedemption.objects.count() == 0


def test_a_huge_file_is_refused_before_it_is_read(client, superuser, policy_world, settings):
    settings.BULK_UPLOAD_MAX_BYTES = 1000
    response = upload(client, policy_world(), b"lms_user_id,course_run_key\n" + b"1,course-v1:A+B+C\n" * 200)
    assert response.status_code == 200 and "the limit is 1,000" in response.content.decode()


def test_good_file_previews_then_saves_waiting_records(client, superuser, policy_world, upstream):
    policy = policy_world()
    data = csv_bytes("lms_user_id,email,course_run_key", f"101,,{upstream.runs[0]}",
                     f",sam@demo-co.example,{upstream.runs[1]}")
    preview = upload(client, policy, data)
    html = preview.content.decode()
    assert "Every row is valid." in html and 'name="_save"' in html
    assert ForcedPolicyRedemption.objects.count() == 0  # the preview saves nothing
    payload = preview.context["payload"]

    saved = client.post(reverse(UPLOAD_URL), {"_save": "1", "policy": str(policy.pk), "payload": payload})
    assert saved.status_code == 200 and b"bulk-saved-force" in saved.content
    waiting_list = re.search(r'href="([^"]+)">See the waiting records', saved.content.decode()).group(1)
    listed = client.get(unescape(waiting_list))
    assert listed.status_code == 200 and listed.context["cl"].result_count == 2
    records = ForcedPolicyRedemption.objects.order_by("lms_user_id")
    assert [(r.lms_user_id, r.course_run_key, r.wait_to_redeem, r.created_by, r.state, r.redeemed_at)
            for r in records] == [(101, upstream.runs[0], True, superuser, "waiting", None),
                                  (102, upstream.runs[1], True, superuser, "waiting", None)]
    assert all(r.history.get().history_user == superuser for r in records)
    # Nothing spent: the ledger holds only the initial deposit.
    assert [tx for tx in upstream.control.transactions(upstream.subsidy_uuid) if tx["lms_user_id"]] == []

    # The same preview posted again is refused row by row: the records now exist.
    again = client.post(reverse(UPLOAD_URL), {"_save": "1", "policy": str(policy.pk), "payload": payload})
    assert "already exists for this learner and run" in again.content.decode()
    assert ForcedPolicyRedemption.objects.count() == 2


def test_a_changed_or_foreign_payload_saves_nothing(client, superuser, policy_world, upstream):
    policy, other = policy_world(), policy_world("per_learner_spend")
    preview = upload(client, policy, csv_bytes("lms_user_id,course_run_key", f"101,{upstream.runs[0]}"))
    payload = preview.context["payload"]
    for data in ({"policy": str(other.pk), "payload": payload},  # signed for another policy
                 {"policy": str(policy.pk), "payload": payload[:-2] + "xx"},
                 {"policy": "not-a-uuid", "payload": payload}):
        response = client.post(reverse(UPLOAD_URL), {"_save": "1", **data})
        assert response.status_code == 302
    client.force_login(person(may_force=True))  # signed for another user
    assert client.post(reverse(UPLOAD_URL), {"_save": "1", "policy": str(policy.pk),
                                             "payload": payload}).status_code == 302
    assert ForcedPolicyRedemption.objects.count() == 0


def test_save_is_all_or_nothing(policy_world, upstream, monkeypatch):
    policy = policy_world()
    rows = validate_rows(policy, read_upload(csv_bytes("lms_user_id,course_run_key", f"101,{upstream.runs[0]}",
                                                       f"102,{upstream.runs[0]}")))
    original = bulk_upload.bulk_create_with_history

    def fail_after_the_records(objs, model, **kwargs):
        original(objs, model, **kwargs)
        raise RuntimeError("history table gone")

    monkeypatch.setattr(bulk_upload, "bulk_create_with_history", fail_after_the_records)
    with pytest.raises(RuntimeError):
        bulk_upload.save_upload(policy=policy, rows=rows, acting_user=None)
    assert ForcedPolicyRedemption.objects.count() == 0
    rows[0].errors.append("bad")
    with pytest.raises(ValueError):
        bulk_upload.save_upload(policy=policy, rows=rows, acting_user=None)
