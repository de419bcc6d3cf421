"""The slash command and the two message context menus, added to an app_commands.CommandTree.

Where they may be used is declared on the tree (servers and the bot's own DMs, installed in servers), so
Discord never offers them where the bot could not answer.
"""

from __future__ import annotations

import asyncio

import discord
from discord import app_commands

from bot import messages
from bot.config import Config
from bot.intake import Intake, answer_privately, attachment_info, may_be_an_image, output_budget
from bot.journal import AttachmentInfo
from bot.memory import StyleMemory
from bot.request import Request
from stylizer.options import choose_seed
from stylizer.presets import Preset, UnknownPreset, get_preset, search_presets
from stylizer.strength import MAX_STRENGTH, MIN_STRENGTH

ALLOWED_CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=False)
ALLOWED_INSTALLS = app_commands.AppInstallationType(guild=True, user=False)


def first_image(message: discord.Message) -> discord.Attachment | None:
    declared = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
    untyped = [a for a in message.attachments if may_be_an_image(a.content_type)]
    return next(iter(declared or untyped), None)


class Commands:
    """What the commands do; ``register`` wires them to a tree."""

    def __init__(self, config: Config, intake: Intake):
        self.config = config
        self.intake = intake
        self.styles = StyleMemory(config.limits.style_memory_s)

    async def stylize(self, interaction: discord.Interaction, content: discord.Attachment,
                      style: discord.Attachment | None, preset: str | None, strength: int | None,
                      preserve_colors: bool, seed: int | None, size: int | None) -> None:
        chosen = self._chosen_style(interaction, style, preset)
        if isinstance(chosen, str):
            await answer_privately(interaction, chosen)
            return
        content_info = attachment_info("content", content)
        request = Request(
            strength=strength or self.config.style.default_strength, size=size or self.config.style.default_size,
            seed=choose_seed(seed), preserve_colors=preserve_colors, variants=self.config.style.variants,
            content_name=content.filename, output_max_bytes=output_budget(interaction),
            style_name=chosen.credit if isinstance(chosen, Preset) else chosen.filename,
            preset=chosen.name if isinstance(chosen, Preset) else None,
        )
        if isinstance(chosen, Preset):
            style_source: AttachmentInfo | bytes = await asyncio.to_thread(chosen.read_bytes)
            attachments = [content_info]
        else:
            style_source, attachments = chosen, [content_info, chosen]
        await self.intake.submit(interaction, content=content_info, style=style_source, attachments=attachments,
                                 request=request)

    def _chosen_style(self, interaction: discord.Interaction, style: discord.Attachment | None,
                      preset: str | None) -> Preset | AttachmentInfo | str:
        """The painting to paint with: an attached one or a preset, exactly one of them; with neither, the one
        "Use as style" remembers. A string is the line telling the user why there is none."""
        if style is not None and preset:
            return messages.STYLE_AND_PRESET
        if preset:
            try:
                return get_preset(preset)
            except UnknownPreset:
                return messages.unknown_preset(preset)
        if style is not None:
            return attachment_info("style", style)
        return self.styles.recall(interaction.user.id) or messages.NO_STYLE_OR_PRESET

    def preset_choices(self, typed: str) -> list[app_commands.Choice[str]]:
        """Discord's autocomplete for ``preset``: titles and artists matching what was typed (at most 25)."""
        return [app_commands.Choice(name=messages.preset_choice(p.title, p.artist, p.year), value=p.name)
                for p in search_presets(typed)]

    async def use_as_style(self, interaction: discord.Interaction, message: discord.Message) -> None:
        image = first_image(message)
        if image is None:
            await answer_privately(interaction, messages.NO_IMAGE_IN_MESSAGE)
            return
        info = attachment_info("style", image)
        problem = self.intake.attachment_problem(info)
        if problem:
            await answer_privately(interaction, problem)
            return
        self.styles.remember(interaction.user.id, info)
        minutes = max(1, round(self.config.limits.style_memory_s / 60))
        await answer_privately(interaction, messages.STYLE_REMEMBERED.format(filename=image.filename, minutes=minutes))

    async def stylize_with_my_style(self, interaction: discord.Interaction, message: discord.Message) -> None:
        style = self.styles.recall(interaction.user.id)
        if style is None:
            await answer_privately(interaction, messages.NO_STYLE_REMEMBERED)
            return
        image = first_image(message)
        if image is None:
            await answer_privately(interaction, messages.NO_IMAGE_IN_MESSAGE)
            return
        content = attachment_info("content", image)
        request = Request(
            strength=self.config.style.default_strength, size=self.config.style.default_size,
            seed=choose_seed(None), preserve_colors=False, variants=self.config.style.variants,
            content_name=image.filename, style_name=style.filename, output_max_bytes=output_budget(interaction),
        )
        await self.intake.submit(interaction, content=content, style=style, attachments=[content, style],
                                 request=request)


def make_tree(client: discord.Client) -> app_commands.CommandTree:
    return app_commands.CommandTree(client, allowed_contexts=ALLOWED_CONTEXTS, allowed_installs=ALLOWED_INSTALLS)


def register(tree: app_commands.CommandTree, commands: Commands) -> None:
    """Add the slash command and the context menus; the size choices come from the config."""
    sizes = [app_commands.Choice(name=messages.size_choice(size), value=size) for size in commands.config.style.sizes]

    @app_commands.command(name=messages.STYLIZE_COMMAND, description=messages.STYLIZE_DESCRIPTION)
    @app_commands.describe(**messages.STYLIZE_OPTIONS)
    @app_commands.choices(size=sizes)
    async def stylize(interaction: discord.Interaction, content: discord.Attachment,
                      style: discord.Attachment | None = None, preset: str | None = None,
                      strength: app_commands.Range[int, MIN_STRENGTH, MAX_STRENGTH] | None = None,
                      preserve_colors: bool = False,
                      seed: app_commands.Range[int, 0, 2**31 - 1] | None = None,
                      size: app_commands.Choice[int] | None = None) -> None:
        await commands.stylize(interaction, content, style, preset, strength, preserve_colors, seed,
                               None if size is None else size.value)

    @stylize.autocomplete("preset")
    async def preset_choices(interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return commands.preset_choices(typed)

    async def use_as_style(interaction: discord.Interaction, message: discord.Message) -> None:
        await commands.use_as_style(interaction, message)

    async def stylize_with_my_style(interaction: discord.Interaction, message: discord.Message) -> None:
        await commands.stylize_with_my_style(interaction, message)

    tree.add_command(stylize)
    tree.add_command(app_commands.ContextMenu(name=messages.USE_AS_STYLE_MENU, callback=use_as_style))
    tree.add_command(app_commands.ContextMenu(name=messages.STYLIZE_WITH_MY_STYLE_MENU,
                                              callback=stylize_with_my_style))
