"""``manage.py mint_jwt``: print a signed JWT the local service accepts. Refuses under production settings."""
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from enterprise_access.devtools.tokens import DEFAULT_LIFETIME_SECONDS, mint_jwt


class Command(BaseCommand):
    help = (
        "Print a JWT signed with the dev-only key, e.g. "
        "`mint_jwt --lms-user-id 101 --roles enterprise_learner:<customer uuid>`. "
        "Works only where settings allow it (local, test); production refuses."
    )

    def add_arguments(self, parser):
        parser.add_argument("--lms-user-id", type=int, required=True, help="The LMS user id (the token's user_id).")
        parser.add_argument("--email", default="", help="The user's email.")
        parser.add_argument("--username", default="", help="The username (default lms-user-<id>).")
        parser.add_argument("--roles", nargs="*", default=[],
                            help="Role claims: enterprise_learner:<uuid>, enterprise_admin:<uuid>, "
                                 "enterprise_openedx_operator:* ...")
        parser.add_argument("--staff", action="store_true",
                            help="Set the administrator claim (LMS staff; it grants nothing here, decision 0013).")
        parser.add_argument("--lifetime", type=int, default=DEFAULT_LIFETIME_SECONDS, help="Seconds until expiry.")

    def handle(self, *args, **options):
        if options["lms_user_id"] < 1:
            raise CommandError("--lms-user-id must be a positive integer.")
        try:
            token = mint_jwt(
                lms_user_id=options["lms_user_id"], email=options["email"], username=options["username"],
                roles=options["roles"], staff=options["staff"], lifetime_seconds=options["lifetime"],
            )
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
