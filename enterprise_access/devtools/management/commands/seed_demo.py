"""
Load the demo world into the upstream emulator and this service's database, and print its identifiers.

Idempotent: the emulator upserts, and local rows are only written when they differ, so running it twice
changes nothing (not even history rows).
"""
import json
import os
import sys

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from enterprise_access.apps.content_assignments.models import AssignmentConfiguration, LearnerContentAssignment
from enterprise_access.apps.content_assignments.services import allocate
from enterprise_access.apps.core.history import acting_as
from enterprise_access.apps.core.models import User
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import POLICY_CLASSES, SubsidyAccessPolicy
from enterprise_access.devtools import demo

ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "demo-admin-password"  # a demo on localhost; say so loudly in the output

POLICY_DEFINITIONS = {
    "per_learner_enrollment": {
        "policy_type": c.PER_LEARNER_ENROLLMENT_CREDIT, "display_name": "Demo: up to 5 enrollments per learner",
        "per_learner_enrollment_limit": 5,
    },
    "per_learner_spend": {
        "policy_type": c.PER_LEARNER_SPEND_CREDIT, "display_name": "Demo: up to $1,000 per learner",
        "per_learner_spend_limit": 100_000,
    },
    "assigned": {
        "policy_type": c.ASSIGNED_LEARNER_CREDIT, "display_name": "Demo: assigned courses",
        "access_method": c.AccessMethods.ASSIGNED,
    },
}


def _upsert(model, lookup, values):
    """Create, or update only the fields that differ (a save writes a history row, so skip no-op saves)."""
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        return model.objects.create(**lookup, **values)
    changed = [field for field, value in values.items() if getattr(obj, field) != value]
    if changed:
        for field in changed:
            setattr(obj, field, values[field])
        obj.save()
    return obj


class Command(BaseCommand):
    help = "Seed the demo world into the upstream emulator and the database; --json prints its identifiers."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the identifiers as one JSON document.")
        parser.add_argument("--learners", type=int, default=0, help="Add N more learners linked to the customer.")
        parser.add_argument("--emulator-url", default=os.environ.get("EMULATOR_URL") or getattr(
            settings, "EMULATOR_URL", "http://127.0.0.1:18270"), help="Base URL of the upstream emulator.")
        parser.add_argument("--service-url", default="http://127.0.0.1:18000", help="Where the service listens.")
        parser.add_argument("--skip-emulator", action="store_true", help="Only write this service's database.")
        parser.add_argument("--migrate", action="store_true",
                            help="First apply migrations and create the cache table (progress goes to stderr); "
                                 "run_demo seeds a database of its own this way.")

    def handle(self, *args, **options):
        if options["learners"] < 0:
            raise CommandError("--learners must be zero or more.")
        if options["migrate"]:
            # Progress goes to stderr, so that --json keeps stdout one JSON document.
            call_command("migrate", interactive=False, verbosity=options["verbosity"], stdout=sys.stderr)
            call_command("createcachetable", verbosity=options["verbosity"], stdout=sys.stderr)
        if not options["skip_emulator"]:
            self._seed_emulator(options["emulator_url"], options["learners"])
        # No one is signed in here: the history of what this writes says so, and why.
        with transaction.atomic(), acting_as(reason="seed_demo: the demo world"):
            policies = self._seed_policies()
            self._seed_assignment(policies["assigned"])
            password = self._seed_admin()
        document = {
            "enterprise_customer_uuid": demo.CUSTOMER_UUID,
            "policies": {kind: str(policy.uuid) for kind, policy in policies.items()},
            "subsidies": dict(demo.SUBSIDY_UUIDS),
            "catalogs": dict(demo.CATALOG_UUIDS),
            "content": {"ordinary": list(demo.ORDINARY_RUNS), "past_deadline": demo.PAST_DEADLINE_RUN,
                        "exec_ed": demo.EXEC_ED_RUN, "not_in_catalog": demo.NOT_IN_CATALOG_RUN},
            "prices_cents": dict(demo.PRICES),
            "learners": [{"lms_user_id": lr["lms_user_id"], "email": lr["email"]}
                         for lr in demo.LEARNERS + demo.extra_learners(options["learners"])],
            "unlinked_learner": {"lms_user_id": demo.UNLINKED_LEARNER["lms_user_id"],
                                 "email": demo.UNLINKED_LEARNER["email"]},
            "assignment": dict(demo.ASSIGNMENT),
            "admin": {"username": ADMIN_USERNAME, "password": password},
            "service_url": options["service_url"],
            "emulator_url": options["emulator_url"],
        }
        if options["json"]:
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Demo world seeded: customer {demo.CUSTOMER_UUID}, policies {document['policies']}"))

    def _seed_emulator(self, emulator_url, learner_count):
        url = f"{emulator_url.rstrip('/')}/_control/seed"
        try:
            response = requests.post(url, json=demo.emulator_seed_document(learner_count), timeout=30)
        except requests.RequestException as exc:
            raise CommandError(
                f"Could not reach the upstream emulator at {emulator_url} ({exc}). Start it with "
                f"`python manage.py run_upstream_emulator --port 18270`, or pass --skip-emulator."
            ) from exc
        if response.status_code >= 300:
            raise CommandError(f"The emulator refused the seed document: {response.status_code} {response.text[:500]}")

    def _seed_policies(self):
        configuration = _upsert(AssignmentConfiguration, {"uuid": demo.ASSIGNMENT_CONFIGURATION_UUID},
                                {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "active": True})
        policies = {}
        for kind, definition in POLICY_DEFINITIONS.items():
            definition = dict(definition)
            policy_class = POLICY_CLASSES[definition.pop("policy_type")]
            values = {
                "policy_type": policy_class.__name__, "enterprise_customer_uuid": demo.CUSTOMER_UUID,
                "subsidy_uuid": demo.SUBSIDY_UUIDS[kind], "catalog_uuid": demo.CATALOG_UUIDS[kind],
                "spend_limit": demo.POLICY_SPEND_LIMIT_CENTS, "active": True, "retired": False,
                "description": "Created by seed_demo.", **definition,
            }
            if kind == "assigned":
                values["assignment_configuration"] = configuration
            existing = SubsidyAccessPolicy.objects.filter(uuid=demo.POLICY_UUIDS[kind]).first()
            if existing is None:
                policy = policy_class(uuid=demo.POLICY_UUIDS[kind], **values)
                policy.full_clean()
                policy.save()
            else:
                policy = _upsert(SubsidyAccessPolicy, {"uuid": demo.POLICY_UUIDS[kind]}, values)
            policies[kind] = SubsidyAccessPolicy.objects.get(uuid=policy.uuid)
        return policies

    def _seed_assignment(self, policy):
        learner = next(lr for lr in demo.LEARNERS if lr["lms_user_id"] == demo.ASSIGNMENT["lms_user_id"])
        exists = LearnerContentAssignment.objects.filter(
            assignment_configuration=policy.assignment_configuration, learner_email=learner["email"],
            content_key=demo.ASSIGNMENT["content_key"],
        ).exists()
        if not exists:
            allocate(
                assignment_configuration=policy.assignment_configuration, learner_email=learner["email"],
                content_key=demo.ASSIGNMENT["content_key"], lms_user_id=learner["lms_user_id"],
                content_price_cents=demo.PRICES[demo.ASSIGNMENT["content_key"]], content_title="Gardening at Scale",
            )

    def _seed_admin(self):
        password = os.environ.get("DEMO_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
        user = User.objects.filter(username=ADMIN_USERNAME).first()
        if user is None:
            User.objects.create_superuser(ADMIN_USERNAME, "admin@localhost", password)
        return password
