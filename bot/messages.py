"""Every sentence the bot shows to a person, in one place so the tone stays the same."""

from __future__ import annotations

from bot.limits import Refusal
from stylizer.strength import MAX_STRENGTH, strength_label

# View Channel (1024) + Send Messages (2048) + Attach Files (32768): enough to answer and to post in the gallery.
INVITE_PERMISSIONS = 1024 + 2048 + 32768
INVITE_URL = (
    "https://discord.com/oauth2/authorize?client_id=<APPLICATION_ID>"
    f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
)


def no_token_help(config_path: str) -> str:
    return f"""No Discord bot token is configured, so the bot cannot start.

Set it in one of two ways:
  * the environment variable DISCORD_TOKEN, e.g.  DISCORD_TOKEN=... .venv/bin/python -m bot
  * or in {config_path}:
        [discord]
        token = "..."
    (copy config.example.toml to {config_path}; every setting is explained there)

To get a token, create a Discord application:
  1. Open https://discord.com/developers/applications and click "New Application".
  2. In "Bot", click "Reset Token" and copy the token (it is shown once).
  3. Invite the bot to your server with the scopes bot + applications.commands and the permissions
     View Channels, Send Messages and Attach Files:
        {INVITE_URL}
     (the application id is on the "General Information" page).

To try the painting without Discord, use the command line (a minute or two on a CPU):
  .venv/bin/python -m stylizer tests/images/content/chelsea.jpg \\
      tests/images/style/vangogh_wheat_field_with_cypresses.jpg -o out.png --strip strip.png \\
      --size 128 --steps 100
The first run downloads torchvision's VGG-19 weights (548 MB) into the torch cache; offline it stops with one
line saying where to copy them, or pass a local copy with --weights PATH.
"""


def human_bytes(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB"
    if count >= 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count} bytes"


NOT_ALLOWED_HERE = "Sorry, I don't paint in this channel — try the channel your server set aside for me."


def attachment_too_large(filename: str, size: int, limit: int) -> str:
    return f"{filename} is {human_bytes(size)}; I can take pictures up to {human_bytes(limit)}."


def attachment_not_image(filename: str) -> str:
    return f"{filename} doesn't look like a picture — please attach a PNG, JPEG, WebP or GIF."


def attachment_size_mismatch(filename: str) -> str:
    return f"{filename} turned out bigger than Discord said it was — please upload it again."


def download_failed(filename: str) -> str:
    return f"I couldn't download {filename} from Discord — please try again."


def refusal(reason: Refusal) -> str:
    if reason.kind == "per_user":
        pictures = "picture" if reason.limit == 1 else "pictures"
        return f"You already have {reason.limit} {pictures} being painted — wait for one to finish."
    if reason.kind == "per_guild":
        return f"This server already has {reason.limit} pictures being painted — please try again in a few minutes."
    return "I'm painting as many pictures as I can right now — please try again in a few minutes."


QUEUE_FULL = "I'm painting as many pictures as I can right now — please try again in a few minutes."
NOT_YOURS = "Only the person who asked for this picture can do that."
TOO_OLD = "That picture is too old to repaint — please run /stylize again."
STRENGTH_AT_LIMIT = "The strength is already at its {edge} ({strength})."
NO_IMAGE_IN_MESSAGE = "That message has no picture I can use."
STYLE_REMEMBERED = "Got it — I'll use {filename} as your style for the next {minutes} minutes. " \
    "Now right-click a photo → Apps → Stylize with my style."
NO_STYLE_REMEMBERED = "You haven't picked a style yet: right-click a painting → Apps → Use as style, then try again."
STYLE_AND_PRESET = "Give me one painting to paint with: attach a style or pick a preset, not both."
NO_STYLE_OR_PRESET = "Which painting should I paint with? Attach one as style, or pick a preset (start typing a " \
    "painter or title)."
NO_TIMELAPSE = "I have no timelapse of this picture: it was painted before I kept them, taken as it was from the " \
    "picture it repaints, or is too old."


def unknown_preset(typed: str) -> str:
    return f"I don't know a preset called “{typed[:100]}” — start typing a painter or a title and pick one."


def preset_choice(title: str, artist: str, year: str) -> str:
    """How a preset is offered in /stylize's autocomplete (Discord shows at most 100 characters)."""
    text = f"{title} — {artist}, {year}"
    return text if len(text) <= 100 else text[:99] + "…"


def timelapse_caption(strength: int, seconds: float) -> str:
    return f"How {strength_label(strength)} formed (painted in {seconds:.1f} s)."


NOT_CANCELLABLE = "That picture is already finished."
GALLERY_MISSING = "This server has no gallery channel for me to share in."
GALLERY_UNREACHABLE = "I can't post in the gallery channel right now."
SHARED = "Shared in the gallery."
RESTARTING = "The bot is restarting — your picture will be finished when it's back."
RESUME_EXPIRED = "I restarted and couldn't finish your picture: the links to your images have expired — " \
    "please send them again."
SHUTTING_DOWN = "The bot is restarting — please try again in a minute."
PAINTER_UNAVAILABLE = "The painter isn't available right now — please try again later."

# What Discord shows for the commands: names, descriptions, option help.
STYLIZE_COMMAND = "stylize"
STYLIZE_DESCRIPTION = "Paint your photo in the style of a painting"
STYLIZE_OPTIONS = {
    "content": "The photo to paint",
    "style": "The painting whose style to use (or pick a preset)",
    "preset": "A famous painting to use as the style: type a painter or a title",
    "strength": "How much style: 1 = a hint, 10 = mostly painting",
    "preserve_colors": "Keep the photo's own colours",
    "seed": "Same seed, same picture: use it to repeat a result",
    "size": "Output size (longest side)",
}
USE_AS_STYLE_MENU = "Use as style"
STYLIZE_WITH_MY_STYLE_MENU = "Stylize with my style"


def size_choice(size: int) -> str:
    return f"{size} px"


# Button labels. Tiles in the strip are labelled stylizer.strength.strength_label(s); buttons name the same.
CANCEL_LABEL = "Cancel"
DELETE_LABEL = "Delete"
SHARE_LABEL = "Share"
RETRY_LABEL = "Retry"
TIMELAPSE_LABEL = "Timelapse"


def less_label(strength: int) -> str:
    return f"Less style: {strength_label(strength)}"


def more_label(strength: int) -> str:
    return f"More style: {strength_label(strength)}"


def upscale_label(strength: int, size: int) -> str:
    return f"{strength_label(strength)} at {size} px"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def queued(position: int, wait_s: float | None = None) -> str:
    place = "Your picture is next in line" if position <= 1 else f"Your picture is number {position} in the queue"
    if wait_s is None:
        return f"{place}…"
    return f"{place} — it should start in about {_duration(wait_s)}…"


def started(attempt: int) -> str:
    return "Painting…" if attempt <= 1 else f"Painting… (second try, attempt {attempt})"


def progress(step: int, total: int, elapsed: float) -> str:
    percent = 100 * step // total if total else 0
    text = f"Painting… step {step}/{total} ({percent}%), {elapsed:.0f} s so far"
    if 0 < step < total:
        text += f", about {_duration(elapsed / step * (total - step))} left"
    return text


# What each kind of stylizer.executor JobFailed means to the person who asked; the executor's detail is logged.
FAILURES = {
    "cancelled": "Cancelled.",
    "timeout": "That picture took too long to paint and was stopped — try a smaller size.",
    "oom": "That picture was too big for the painter's memory — try a smaller size.",
    "crashed": "The painter crashed while working on your picture — try a smaller size or another picture.",
    "unavailable": PAINTER_UNAVAILABLE,
    "internal": "Something went wrong while painting — please try again.",
}


def failure(kind: str, detail: str) -> str:
    """The line for a failed job. Only an unreadable picture's detail is shown: stylizer.images writes it for
    people ("coffee.txt is not an image …"); every other detail names the executor's insides."""
    if kind == "invalid_image":
        return detail
    return FAILURES.get(kind, FAILURES["internal"])


REPAINTED_FROM_SCRATCH = "The picture this repaints was no longer kept, so every strength was painted from scratch."


def tile_ready(strength: int, size: int) -> str:
    return f"{strength_label(strength)} is the strip's tile above; now painting it at {size} px."


def reused(count: int, total: int) -> str:
    return f"{count} of {total} reused"


def caption(*, strength: int, strengths: tuple[int, ...], seed: int, size: int, seconds: float,
            note: str | None = None, reused_count: int = 0, credit: str | None = None) -> str:
    timing = f"painted in {seconds:.1f} s"
    if reused_count:
        timing += f" ({reused(reused_count, len(strengths))})"
    parts = [f"{strength_label(strength)}/{MAX_STRENGTH}", f"seed {seed}", f"{size} px", timing]
    text = " · ".join(parts)
    if credit:
        text += f"\nStyle: *{credit}* (public domain)"
    if len(strengths) > 1:
        tiles = ", ".join(strength_label(s) for s in strengths)
        text += f"\nThe strip shows {tiles}: paint another of them at full size below, or ask for less or more style."
    if note:
        text += f"\nNote: {note}"
    return text


def ready(user_id: int, caption_text: str) -> str:
    return f"<@{user_id}> your picture is ready. {caption_text}"


def permission_names(missing: list[str]) -> str:
    names = [name.replace("_", " ").title() for name in missing]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def sent_by_dm(channel_id: int, missing: list[str]) -> str:
    return (f"I couldn't post your picture in <#{channel_id}> (I'm missing {permission_names(missing)} there), "
            "so here it is.")


def undeliverable(channel_id: int, missing: list[str]) -> str:
    return (f"Your picture is painted, but I can't post it in <#{channel_id}>: I'm missing "
            f"{permission_names(missing)} there. Ask a moderator to give me that permission.")


def gallery_forbidden(channel_id: int, missing: list[str]) -> str:
    return f"I can't share in <#{channel_id}>: I'm missing {permission_names(missing)} there."


def shared_post(user_id: int, style_name: str) -> str:
    return f"Painted for <@{user_id}> in the style of {style_name}."
