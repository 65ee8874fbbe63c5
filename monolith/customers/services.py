"""Registering customers and issuing API tokens (used by the API, the pages and commands)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from monolith.core.errors import Conflict
from monolith.customers.models import Customer


def user_id(user: object) -> int:
    """The primary key of an authenticated user (views call this behind a login check)."""
    pk = getattr(user, "pk", None)
    if not isinstance(pk, int):
        raise TypeError("an authenticated user is required here")
    return pk


def normalize_email(email: str) -> str:
    return email.strip().lower()


@transaction.atomic
def register_customer(email: str, password: str, **profile: Any) -> Customer:
    email = normalize_email(email)
    user_model = get_user_model()
    if user_model.objects.filter(username=email).exists():
        raise Conflict(f"An account with e-mail {email} already exists.", email=email)
    try:
        user = user_model.objects.create_user(username=email, email=email, password=password)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict(f"An account with e-mail {email} already exists.", email=email) from exc
    return Customer.objects.create(user=user, **profile)


def authenticate_email(email: str, password: str) -> AbstractBaseUser | None:
    return authenticate(username=normalize_email(email), password=password)


def token_for(user: AbstractBaseUser) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)
