"""Request validation against Discord's published OpenAPI spec (vendored in discord-api-spec/).

`find_operation` maps a request to the spec's route and method (Discord answers 404 / 405 otherwise);
`body_errors` validates a JSON body (or a multipart request's `payload_json`) against the operation's request
schema and returns Discord's `errors` tree ({"field": {"0": {"_errors": [{"code", "message"}]}}}) or None.
Validators are compiled on first use of an operation and cached for the process: the spec is large and most
tests use a handful of routes.

Where the spec and Discord differ, Discord wins:
- Snowflakes may be JSON integers as well as strings (discord.py sends upload placeholders as integers).
- A `oneOf` that more than one alternative matches is accepted: Discord's unions are told apart by their
  `type` field, and the spec's alternatives sometimes overlap.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parent / "discord-api-spec" / "openapi.json"
SPEC_URI = "urn:discord-openapi"
METHODS = ("get", "put", "post", "patch", "delete")


class RouteError(Exception):
    """The spec has no such route (404) or the route has no such method (405)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"{status}")
        self.status = status


@functools.cache
def _spec() -> dict[str, Any]:
    spec = json.loads(SPEC_PATH.read_text())
    snowflake = spec["components"]["schemas"]["SnowflakeType"]
    spec["components"]["schemas"]["SnowflakeType"] = {"anyOf": [snowflake, {"type": "integer", "minimum": 0}]}
    return spec


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(SPEC_URI, Resource.from_contents(_spec(), default_specification=DRAFT202012))


@functools.cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    """(regex, template) for every path, literal segments first ("/users/@me" before "/users/{user_id}")."""
    templates = sorted(_spec()["paths"], key=lambda t: (t.count("{"), t))
    return [(re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(t)) + "$"), t) for t in templates]


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(template, operation) for a request path relative to /api/v10; raises RouteError(404 or 405)."""
    matching = [template for regex, template in _routes() if regex.match(path)]
    if not matching:
        raise RouteError(404)
    for template in matching:
        operation = _spec()["paths"][template].get(method.lower())
        if operation is not None:
            return template, operation
    raise RouteError(405)


def _absolute(node: Any) -> Any:
    """The operation's schema with its local $refs pointing into the registered spec resource."""
    if isinstance(node, dict):
        return {k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else _absolute(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


@functools.cache
def _validator(template: str, method: str) -> Draft202012Validator | None:
    body = _spec()["paths"][template][method].get("requestBody")
    if body is None:
        return None
    content = body["content"]
    schema = (content.get("application/json") or next(iter(content.values())))["schema"]
    return Draft202012Validator(_absolute(copy.deepcopy(schema)), registry=_registry())


def has_body(template: str, method: str) -> bool:
    return _validator(template, method.lower()) is not None


def body_errors(template: str, method: str, payload: Any) -> dict[str, Any] | None:
    """Discord's `errors` tree for `payload`, or None when it is valid for this operation."""
    validator = _validator(template, method.lower())
    if validator is None:
        return None
    tree: dict[str, Any] = {}
    for error in validator.iter_errors(payload):
        for leaf in _leaves(error):
            path = list(leaf.absolute_path)
            if leaf.validator == "required":  # Discord puts "required" on the missing field itself
                for name in leaf.validator_value:
                    if isinstance(leaf.instance, dict) and name not in leaf.instance:
                        add_error(tree, [*path, name], *_describe(leaf))
                continue
            add_error(tree, path, *_describe(leaf))
    return tree or None


def add_error(tree: dict[str, Any], path: Iterable[Any], code: str, message: str) -> None:
    """Put one error at `path` (keys and list indices) into an `errors` tree, as Discord nests them."""
    node = tree
    for key in path:
        node = node.setdefault(str(key), {})
    entry = {"code": code, "message": message}
    if entry not in node.setdefault("_errors", []):  # the spec and a documented limit may say the same
        node["_errors"].append(entry)


def _mismatched_alternative(errors: list[ValidationError]) -> bool:
    """The alternative is another shape altogether: wrong JSON type or a different `type` discriminator."""
    return any((not e.relative_path and e.validator == "type") or list(e.relative_path) == ["type"]
               or (not e.relative_path and e.validator == "required" and "type" in e.message)
               for e in errors)


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors worth reporting: inside a union, those of the alternative the payload was meant to be."""
    if error.validator not in ("anyOf", "oneOf"):
        return [error]
    groups: dict[Any, list[ValidationError]] = defaultdict(list)
    for sub in error.context or []:
        groups[sub.relative_schema_path[0]].append(sub)
    if error.validator == "oneOf" and len(groups) < len(error.validator_value):
        return []  # more than one alternative matched: see the module docstring
    intended = [g for g in groups.values() if not _mismatched_alternative(g)]
    if len(intended) == 1:
        return [leaf for sub in intended[0] for leaf in _leaves(sub)]
    if not intended:
        return [error]
    picked = best_match(sub for group in intended for sub in group)
    return _leaves(picked) if picked is not None else [error]


def _describe(error: ValidationError) -> tuple[str, str]:
    """Discord's error code and message for one failed keyword."""
    value = error.validator_value
    if error.validator == "required":
        return "BASE_TYPE_REQUIRED", "This field is required"
    if error.validator in ("maxLength", "maxItems"):
        return "BASE_TYPE_MAX_LENGTH", f"Must be {value} or fewer in length."
    if error.validator in ("minLength", "minItems"):
        return "BASE_TYPE_MIN_LENGTH", f"Must be {value} or more in length."
    if error.validator in ("enum", "const"):
        choices = value if isinstance(value, list) else [value]
        return "BASE_TYPE_CHOICES", f"Value must be one of {tuple(choices)}."
    if error.validator == "pattern":
        return "STRING_TYPE_REGEX", f"String value did not match validation regex {value!r}."
    if error.validator in ("maximum", "exclusiveMaximum"):
        return "NUMBER_TYPE_MAX", f"Value should be less than or equal to {value}."
    if error.validator in ("minimum", "exclusiveMinimum"):
        return "NUMBER_TYPE_MIN", f"Value should be greater than or equal to {value}."
    if error.validator == "type":
        return "BASE_TYPE_INVALID", f"Value {json.dumps(error.instance)[:60]} is not of type {value}."
    return "BASE_TYPE_INVALID", error.message[:200]
