"""
``python manage.py check_policy_tenancy``: list the policies whose subsidy or catalog is not their own customer's.

Asks the subsidy service and enterprise-catalog about every policy (or those of ``--customer``), as creating a
policy does (decision 0013). Prints one block per failing policy, or with ``--json`` one JSON object:
``{"checked": N, "failing": [...], "unchecked": [...]}``. Exit status: 0 when every policy passed; 1 when any
failed; 2 when none failed but some could not be checked (an upstream gave no answer: run it again).
"""
import json
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError

from ...models import SubsidyAccessPolicy
from ...tenancy import check_policy_tenancy

EXIT_FAILING = 1
EXIT_UNCHECKED = 2


class Command(BaseCommand):
    help = "List policies whose subsidy or catalog belongs to another enterprise customer (exit 1 if any)."

    def add_arguments(self, parser):
        parser.add_argument("--customer", default=None, metavar="UUID",
                            help="Check only this enterprise customer's policies.")
        parser.add_argument("--include-retired", action="store_true",
                            help="Check retired policies too (they never redeem; skipped by default).")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")

    def handle(self, *args, **options):
        policies = SubsidyAccessPolicy.objects.order_by("enterprise_customer_uuid", "created")
        if options["customer"]:
            try:
                policies = policies.filter(enterprise_customer_uuid=UUID(options["customer"]))
            except ValueError:
                raise CommandError(f"--customer must be an enterprise customer uuid, not {options['customer']!r}.")
        if not options["include_retired"]:
            policies = policies.filter(retired=False)
        policies = list(policies)
        reports = check_policy_tenancy(policies)
        failing = [report.as_dict() for report in reports if report.errors]
        unchecked = [report.as_dict() for report in reports if report.unavailable]
        if options["json"]:
            self.stdout.write(json.dumps({"checked": len(policies), "failing": failing, "unchecked": unchecked}))
        else:
            for entry in failing:
                self.stdout.write(f"FAIL {entry['policy_uuid']} ({entry['display_name']}) customer "
                                  f"{entry['enterprise_customer_uuid']}{'' if entry['active'] else ', inactive'}")
                for name, message in entry["errors"].items():
                    self.stdout.write(f"  {name}: {message}")
            for entry in unchecked:
                self.stdout.write(f"UNCHECKED {entry['policy_uuid']} ({entry['display_name']}): {entry['unavailable']}")
            self.stdout.write(f"{len(policies)} policies checked: {len(failing)} failing, {len(unchecked)} unchecked.")
        if failing:
            raise CommandError(f"{len(failing)} policies spend a subsidy or use a catalog of another customer.",
                               returncode=EXIT_FAILING)
        if unchecked:
            raise CommandError(f"{len(unchecked)} policies could not be checked; run the command again.",
                               returncode=EXIT_UNCHECKED)
