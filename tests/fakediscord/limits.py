"""Limits Discord documents but its OpenAPI spec does not carry (or carries differently), checked per request.

Messages (https://discord.com/developers/docs/resources/message#create-message,
.../interactions/message-components): content ≤ 2000 characters (the spec says 4000, a Nitro user's
limit; bots get 2000), ≤ 10 uploaded files, ≤ 5 action rows, each row ≤ 5 buttons or exactly one select,
custom_id unique within the message (the spec has custom_id ≤ 100 and label ≤ 80 itself).
Uploads: the upload limit applies to all files of one request together (413, code 40005).
Commands (.../interactions/application-commands#registering-a-command): chat-input and option names match
`^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$` in lower case, descriptions 1–100 characters (empty for
user and message commands), ≤ 25 options and ≤ 25 choices, required options before optional ones,
names unique per command type and level; `autocomplete` only on string, integer and number options and never
with `choices`.
Autocomplete answers (.../interactions/receiving-and-responding#interaction-response-object-autocomplete):
≤ 25 choices (in the spec), each name 1–100 characters (in the spec) and a string value ≤ 100 characters
(the spec says 6000; the option-choice structure documents 100).

Every function returns Discord's `errors` tree (see spec.add_error) or None; the caller answers 400 50035.
"""

from __future__ import annotations

from typing import Any

from .spec import add_error

MAX_CONTENT = 2000
MAX_FILES = 10
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_CHOICE_VALUE = 100
CALLBACK_AUTOCOMPLETE_RESULT = 8
AUTOCOMPLETE_OPTION_TYPES = (3, 4, 10)
CALLBACK_ROUTE = ("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
IS_COMPONENTS_V2 = 1 << 15
ACTION_ROW, BUTTON = 1, 2
SELECT_TYPES = (3, 5, 6, 7, 8)
COMMAND_CHAT_INPUT = 1
OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP = 1, 2
NAME_PUNCTUATION = set("-_'")

# Where a request carries a message payload: (method, spec template) -> the key holding it (None: the body).
MESSAGE_ROUTES: dict[tuple[str, str], str | None] = {
    ("POST", "/channels/{channel_id}/messages"): None,
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"): None,
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"): None,
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"): None,
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"): None,
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback"): "data",
    ("POST", "/channels/{channel_id}/threads"): "message",
}
COMMAND_ROUTES = {
    ("PUT", "/applications/{application_id}/commands"), ("POST", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"),
    ("POST", "/applications/{application_id}/guilds/{guild_id}/commands"),
}


def merge(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two `errors` trees as one (either may be None)."""
    if not first or not second:
        return first or second or None
    merged = dict(first)
    for key, value in second.items():
        if key == "_errors":
            merged[key] = [*merged.get(key, []), *value]
        elif isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def request_errors(template: str, method: str, payload: Any, files: dict[int, tuple[str, bytes]]
                   ) -> dict[str, Any] | None:
    """The documented limits this request breaks (after it passed the spec's schema)."""
    key = (method.upper(), template)
    tree: dict[str, Any] = {}
    if len(files) > MAX_FILES:
        add_error(tree, ["files"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
    if key in MESSAGE_ROUTES and isinstance(payload, dict):
        field = MESSAGE_ROUTES[key]
        message = payload if field is None else payload.get(field)
        if field == "data" and payload.get("type") == 9 and isinstance(message, dict):  # a modal
            _components(tree, [field], message.get("components"), modal=True)
        elif isinstance(message, dict):
            _message(tree, [] if field is None else [field], message)
    if key in COMMAND_ROUTES:
        _commands(tree, payload if isinstance(payload, list) else [payload], as_list=isinstance(payload, list))
    if key == CALLBACK_ROUTE and isinstance(payload, dict) and payload.get("type") == CALLBACK_AUTOCOMPLETE_RESULT:
        _autocomplete_choices(tree, (payload.get("data") or {}).get("choices") or [])
    return tree or None


def _autocomplete_choices(tree: dict[str, Any], choices: list[Any]) -> None:
    for number, choice in enumerate(choices):
        value = choice.get("value") if isinstance(choice, dict) else None
        if isinstance(value, str) and len(value) > MAX_CHOICE_VALUE:
            add_error(tree, ["data", "choices", number, "value"], "BASE_TYPE_MAX_LENGTH",
                      f"Must be {MAX_CHOICE_VALUE} or fewer in length.")


def upload_too_large(files: dict[int, tuple[str, bytes]], limit: int) -> str | None:
    total = sum(len(data) for _, data in files.values())
    if total <= limit:
        return None
    return f"{len(files)} file(s), {total} bytes together; the upload limit per request is {limit} bytes"


def _message(tree: dict[str, Any], path: list[Any], message: dict[str, Any]) -> None:
    content = message.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT:
        add_error(tree, [*path, "content"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
    if not (message.get("flags") or 0) & IS_COMPONENTS_V2:
        _components(tree, path, message.get("components"), modal=False)
    ids: dict[str, list[Any]] = {}
    _collect_custom_ids(message.get("components") or [], [*path, "components"], ids)
    for custom_id, places in ids.items():
        for place in places[1:]:
            add_error(tree, place, "COMPONENT_CUSTOM_ID_DUPLICATED",
                      f"Component custom id {custom_id!r} cannot be duplicated")


def _components(tree: dict[str, Any], path: list[Any], rows: Any, *, modal: bool) -> None:
    if not isinstance(rows, list):
        return
    if len(rows) > MAX_ACTION_ROWS:
        add_error(tree, [*path, "components"], "BASE_TYPE_MAX_LENGTH",
                  f"Must be {MAX_ACTION_ROWS} or fewer in length.")
    for index, row in enumerate(rows):
        if modal or not isinstance(row, dict) or row.get("type") != ACTION_ROW:
            continue
        children = row.get("components") or []
        kinds = [child.get("type") for child in children if isinstance(child, dict)]
        where = [*path, "components", index, "components"]
        if any(kind in SELECT_TYPES for kind in kinds) and len(kinds) > 1:
            add_error(tree, where, "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                      "A select menu takes a whole action row: no other component may share it")
        elif kinds.count(BUTTON) > MAX_ROW_BUTTONS:
            add_error(tree, where, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROW_BUTTONS} or fewer in length.")


def _collect_custom_ids(nodes: list[Any], path: list[Any], ids: dict[str, list[Any]]) -> None:
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("custom_id"), str):
            ids.setdefault(node["custom_id"], []).append([*path, index, "custom_id"])
        if isinstance(node.get("components"), list):
            _collect_custom_ids(node["components"], [*path, index, "components"], ids)
        if isinstance(node.get("accessory"), dict):
            _collect_custom_ids([node["accessory"]], [*path, index, "accessory"], ids)


def _name_errors(name: Any) -> str | None:
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return "Must be between 1 and 32 in length."
    # \\p{L}\\p{N} as str.isalnum (close enough: Devanagari/Thai vowel signs are not modelled).
    if not all(char.isalnum() or char in NAME_PUNCTUATION for char in name):
        return "Command name is invalid: letters, digits, '-', '_' and \"'\" only."
    if name != name.lower():
        return "Command name is invalid: must be lower case."
    return None


def _description_errors(description: Any) -> str | None:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        return "Must be between 1 and 100 in length."
    return None


def _commands(tree: dict[str, Any], commands: list[Any], *, as_list: bool) -> None:
    seen: set[tuple[Any, Any]] = set()
    for index, command in enumerate(commands):
        if not isinstance(command, dict):
            continue
        path: list[Any] = [index] if as_list else []
        kind = command.get("type", COMMAND_CHAT_INPUT)
        if (kind, command.get("name")) in seen:
            add_error(tree, [*path, "name"], "APPLICATION_COMMAND_ALREADY_EXISTS",
                      "Application command names must be unique")
        seen.add((kind, command.get("name")))
        if kind == COMMAND_CHAT_INPUT:
            _named(tree, path, command)
            _options(tree, [*path, "options"], command.get("options") or [])
        elif command.get("description") not in (None, ""):
            add_error(tree, [*path, "description"], "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                      "Context menu commands cannot have a description")


def _named(tree: dict[str, Any], path: list[Any], item: dict[str, Any]) -> None:
    problem = _name_errors(item.get("name"))
    if problem:
        add_error(tree, [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", problem)
    problem = _description_errors(item.get("description"))
    if problem:
        add_error(tree, [*path, "description"], "BASE_TYPE_BAD_LENGTH", problem)


def _options(tree: dict[str, Any], path: list[Any], options: list[Any]) -> None:
    if len(options) > MAX_OPTIONS:
        add_error(tree, path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    optional_seen = False
    names: set[Any] = set()
    for index, option in enumerate(options):
        if not isinstance(option, dict):
            continue
        where = [*path, index]
        _named(tree, where, option)
        if option.get("name") in names:
            add_error(tree, [*where, "name"], "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                      "Option names must be unique")
        names.add(option.get("name"))
        if option.get("type") in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP):
            _options(tree, [*where, "options"], option.get("options") or [])
            continue
        if option.get("required"):
            if optional_seen:
                add_error(tree, [*where, "required"], "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                          "Required options must be placed before non-required options")
        else:
            optional_seen = True
        choices = option.get("choices") or []
        if option.get("autocomplete") and (choices or option.get("type") not in AUTOCOMPLETE_OPTION_TYPES):
            add_error(tree, [*where, "autocomplete"], "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_INVALID",
                      "Autocomplete is only for string, integer and number options without choices")
        if len(choices) > MAX_CHOICES:
            add_error(tree, [*where, "choices"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
        for number, choice in enumerate(choices):
            if isinstance(choice, dict) and not 1 <= len(str(choice.get("name", ""))) <= 100:
                add_error(tree, [*where, "choices", number, "name"], "BASE_TYPE_BAD_LENGTH",
                          "Must be between 1 and 100 in length.")
