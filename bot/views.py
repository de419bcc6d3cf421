"""Persistent buttons. Each one is a DynamicItem whose custom_id carries the job id (and, for Upscale, the
strength of the tile), so a click works after a restart: everything else is in the journal. The bot registers
them with add_dynamic_items.

A click is acknowledged by the button itself, before anything reads the journal (a row carries both images
and waits behind the journal's lock, which can outlast Discord's 3 seconds): then the client's
``button_actions`` does the rest.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol, cast

import discord

from bot import messages
from bot.customids import CustomId, template
from stylizer.strength import MAX_STRENGTH, MIN_STRENGTH, step_strength, strip_spacing

# How a click is acknowledged: "silent" shows nothing (the job's own messages will change), "public" shows
# "thinking…" to everyone (a new picture is coming), "private" shows it to the clicker only.
Acknowledgement = Literal["silent", "public", "private"]


class ButtonActions(Protocol):
    async def clicked(self, interaction: discord.Interaction, custom: CustomId) -> None:
        """Handle an acknowledged click on one of the job buttons."""


class HasButtonActions(Protocol):
    button_actions: ButtonActions


async def acknowledge(interaction: discord.Interaction, how: Acknowledgement) -> None:
    if how == "silent":
        await interaction.response.defer()
    else:
        await interaction.response.defer(ephemeral=how == "private", thinking=True)


class _JobButton(discord.ui.DynamicItem[discord.ui.Button], template=r"sty:never:(?P<job_id>x)"):
    """Shared behaviour: build from a CustomId, acknowledge a click, hand it to the client's button actions."""

    action = ""
    default_label = ""
    button_style = discord.ButtonStyle.secondary
    acknowledgement: Acknowledgement = "silent"

    def __init__(self, job_id: str, argument: int | None = None, *, label: str | None = None,
                 row: int | None = None, disabled: bool = False):
        self.custom = CustomId(self.action, job_id, argument)
        super().__init__(discord.ui.Button(label=label or self.default_label, style=self.button_style,
                                           custom_id=str(self.custom), row=row, disabled=disabled))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> Any:
        argument = match.groupdict().get("argument")
        return cls(match["job_id"], None if argument is None else int(argument), label=item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, self.acknowledgement)
        host = cast(HasButtonActions, interaction.client)
        await host.button_actions.clicked(interaction, self.custom)


class CancelButton(_JobButton, template=template("cancel")):
    action, default_label, button_style = "cancel", messages.CANCEL_LABEL, discord.ButtonStyle.danger


class LessButton(_JobButton, template=template("less")):
    action, acknowledgement = "less", "public"


class MoreButton(_JobButton, template=template("more")):
    action, acknowledgement = "more", "public"


class UpscaleButton(_JobButton, template=template("upscale")):
    action, button_style, acknowledgement = "upscale", discord.ButtonStyle.primary, "public"


class RetryButton(_JobButton, template=template("retry")):
    action, default_label, button_style = "retry", messages.RETRY_LABEL, discord.ButtonStyle.primary
    acknowledgement = "public"


class DeleteButton(_JobButton, template=template("delete")):
    action, default_label, button_style = "delete", messages.DELETE_LABEL, discord.ButtonStyle.danger


class ShareButton(_JobButton, template=template("share")):
    action, default_label, button_style = "share", messages.SHARE_LABEL, discord.ButtonStyle.success
    acknowledgement = "private"


class TimelapseButton(_JobButton, template=template("timelapse")):
    # Anyone may watch it: art channels share how a picture came about.
    action, default_label, acknowledgement = "timelapse", messages.TIMELAPSE_LABEL, "public"


DYNAMIC_ITEMS = (CancelButton, LessButton, MoreButton, UpscaleButton, RetryButton, DeleteButton, ShareButton,
                 TimelapseButton)
TILES_PER_ROW = 5


def cancel_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def retry_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id))
    return view


def _step_button(button: type[_JobButton], job_id: str, strength: int, delta: int) -> _JobButton:
    """``delta``: one strip spacing, negative for less style; the button names the tile it lands on."""
    stepped = step_strength(strength, delta)
    label = messages.less_label if delta < 0 else messages.more_label
    edge = MIN_STRENGTH if delta < 0 else MAX_STRENGTH
    # A button that could only answer "already at the limit" is shown disabled.
    return button(job_id, label=label(stepped if stepped is not None else edge), row=0,
                  disabled=stepped is None)


def result_view(job_id: str, *, strength: int, strengths: tuple[int, ...], size: int, upscale_size: int,
                gallery: bool, timelapse: bool = False) -> discord.ui.View:
    """Less/More style (the neighbouring tiles of the strip), Delete, Share and Timelapse on one row; below, one
    Upscale button per tile of the strip, painting that tile at ``upscale_size`` (the largest offered) and
    labelled as the tile is; the result itself has none when it is already at that size."""
    view = discord.ui.View(timeout=None)
    spacing = strip_spacing(len(strengths))
    view.add_item(_step_button(LessButton, job_id, strength, -spacing))
    view.add_item(_step_button(MoreButton, job_id, strength, +spacing))
    view.add_item(DeleteButton(job_id, row=0))
    if gallery:
        view.add_item(ShareButton(job_id, row=0))
    if timelapse:
        view.add_item(TimelapseButton(job_id, row=0))
    tiles = [tile for tile in strengths if tile != strength or size < upscale_size]
    if len(strengths) > 1:
        for index, tile in enumerate(tiles):
            view.add_item(UpscaleButton(job_id, tile, label=messages.upscale_label(tile, upscale_size),
                                        row=1 + index // TILES_PER_ROW))
    return view
