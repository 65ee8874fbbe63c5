"""``manage.py issue_token EMAIL``: print the API token of an account (creating it if needed)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monolith.customers.services import normalize_email, token_for


class Command(BaseCommand):
    help = "Print the API token of an account, creating the token if it has none."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        email = normalize_email(options["email"])
        user = get_user_model().objects.filter(username=email).first()
        if user is None:
            raise CommandError(f"No account with e-mail {email}.")
        self.stdout.write(token_for(user))
