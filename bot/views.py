"""Persistent buttons. Each one is a DynamicItem whose custom_id carries the job id, so a click works after a
restart: the handler finds everything else in the journal. The bot registers them with add_dynamic_items.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.customids import CustomId, template

if TYPE_CHECKING:
    from bot.app import StyleBot


class _JobButton(discord.ui.DynamicItem[discord.ui.Button], template=r"sty:never:(?P<job_id>x)"):
    """Shared behaviour: build from a CustomId, hand clicks to the bot."""

    action = ""
    default_label = ""
    button_style = discord.ButtonStyle.secondary

    def __init__(self, job_id: str, argument: int | None = None, *, label: str | None = None, row: int | None = None):
        self.custom = CustomId(self.action, job_id, argument)
        super().__init__(
            discord.ui.Button(label=label or self.default_label, style=self.button_style, custom_id=str(self.custom),
                              row=row)
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> Any:
        argument = match.groupdict().get("argument")
        return cls(match["job_id"], None if argument is None else int(argument), label=item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: StyleBot = interaction.client  # type: ignore[assignment]
        await bot.actions.on_button(interaction, self.custom)


class CancelButton(_JobButton, template=template("cancel")):
    action, default_label, button_style = "cancel", "Cancel", discord.ButtonStyle.danger


class LessButton(_JobButton, template=template("less")):
    action, default_label, button_style = "less", "Less style", discord.ButtonStyle.secondary


class MoreButton(_JobButton, template=template("more")):
    action, default_label, button_style = "more", "More style", discord.ButtonStyle.secondary


class VariantButton(_JobButton, template=template("variant")):
    action, button_style = "variant", discord.ButtonStyle.primary


class DeleteButton(_JobButton, template=template("delete")):
    action, default_label, button_style = "delete", "Delete", discord.ButtonStyle.danger


class ShareButton(_JobButton, template=template("share")):
    action, default_label, button_style = "share", "Share", discord.ButtonStyle.success


DYNAMIC_ITEMS = (CancelButton, LessButton, MoreButton, VariantButton, DeleteButton, ShareButton)


def cancel_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def result_view(job_id: str, *, variants: int, strength: int, gallery: bool) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    less, more = LessButton(job_id, row=0), MoreButton(job_id, row=0)
    # A button that can only answer "already at the limit" is better shown disabled.
    less.item.disabled = strength <= 1
    more.item.disabled = strength >= 10
    view.add_item(less)
    view.add_item(more)
    if variants > 1:
        for index in range(variants):
            view.add_item(VariantButton(job_id, index, label=f"Variant {index + 1}", row=1 + index // 5))
    view.add_item(DeleteButton(job_id, row=0))
    if gallery:
        view.add_item(ShareButton(job_id, row=0))
    return view
