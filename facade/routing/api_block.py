"""The ``api:`` block of routing.yaml: the public edge on AWS (an API Gateway HTTP API).

::

    api:
      name: shop
      cors:                               # answered by API Gateway itself
        allow_origins: ["https://shop.example.com"]
        allow_methods: [GET, POST]
        allow_headers: [Authorization, Content-Type]
        max_age: 600                      # seconds, 0-86400
      throttling: {burst: 200, rate: 100} # requests; the stage's default route settings
      jwt:                                # the authorizer of routes with `auth: true`
        issuer: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123
        audience: [app-client-id]

Only ``strangler render apigw`` reads it; the local facade has no edge of its own.
"""

from __future__ import annotations

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from facade.routing.checker import Checker, show
from facade.routing.model import ApiSettings, Cors, Jwt

API_KEYS = ("name", "cors", "throttling", "jwt")
CORS_KEYS = ("allow_origins", "allow_methods", "allow_headers", "max_age", "allow_credentials")
THROTTLING = {"burst": (0, 5000), "rate": (0, 10_000)}  # the account's default quota
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*")


def _strings(check: Checker, node: CommentedMap, key: str, path: str) -> tuple[str, ...]:
    value = node.get(key)
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, CommentedSeq) or not all(isinstance(v, str) for v in value):
        check.at(node, key, f"{path}.{key}", f"{show(value)}: a string or a list of strings")
        return ()
    return tuple(value)


def _cors(check: Checker, node: CommentedMap, path: str) -> Cors | None:
    body = check.mapping(node["cors"], node, "cors", path, CORS_KEYS)
    if body is None:
        return None
    lists = {k: _strings(check, body, k, path) if k in body else () for k in CORS_KEYS[:3]}
    for method in lists["allow_methods"]:
        if method.upper() not in METHODS:
            check.at(
                body, "allow_methods", f"{path}.allow_methods", f"{method!r}: one of {METHODS}"
            )
    max_age = body.get("max_age", 0)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= 86_400:
        check.at(body, "max_age", f"{path}.max_age", f"{max_age!r}: seconds, 0-86400")
        max_age = 0
    credentials = body.get("allow_credentials", False)
    if not isinstance(credentials, bool):
        check.at(body, "allow_credentials", f"{path}.allow_credentials", "true or false")
    elif credentials and "*" in lists["allow_origins"]:
        check.at(
            body, "allow_credentials", f"{path}.allow_credentials",
            "API Gateway refuses credentials with the '*' origin: list the origins",
        )  # fmt: skip
    return Cors(
        tuple(lists["allow_origins"]),
        tuple(m.upper() for m in lists["allow_methods"]),
        tuple(lists["allow_headers"]),
        max_age,
        credentials is True,
    )


def api_settings(check: Checker, document: CommentedMap) -> ApiSettings:
    if "api" not in document:
        return ApiSettings()
    node = check.mapping(document["api"], document, "api", "api", API_KEYS)
    if node is None:
        return ApiSettings()
    name = str(node.get("name", "strangler"))
    cors = _cors(check, node, "api.cors") if "cors" in node else None
    limits: dict[str, int] = {}
    throttling = (
        check.mapping(node["throttling"], node, "throttling", "api.throttling", tuple(THROTTLING))
        if "throttling" in node
        else None
    )
    for key, (low, high) in THROTTLING.items():
        if throttling is None or key not in throttling:
            continue
        value = throttling[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            check.at(throttling, key, f"api.throttling.{key}", f"{value!r}: {low}-{high} requests")
        else:
            limits[key] = value
    jwt = None
    if "jwt" in node:
        body = check.mapping(node["jwt"], node, "jwt", "api.jwt", ("issuer", "audience"))
        if body is not None:
            issuer = str(body.get("issuer", ""))
            if not issuer.startswith("https://"):
                where = "issuer" if "issuer" in body else None
                wanted = "the token issuer's https:// URL (a Cognito user pool's)"
                check.at(body, where, "api.jwt.issuer", f"{issuer!r}: {wanted}")
            audience = _strings(check, body, "audience", "api.jwt") if "audience" in body else ()
            if not audience:
                check.at(body, "audience" if "audience" in body else None, "api.jwt.audience",
                         "at least one audience (the app client id)")  # fmt: skip
            jwt = Jwt(issuer, audience)
    return ApiSettings(name, cors, limits.get("burst"), limits.get("rate"), jwt)
