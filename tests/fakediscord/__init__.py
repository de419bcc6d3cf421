"""A local fake Discord (REST, gateway, CDN) that the real discord.py client talks to, with a driver API."""

from .bot_process import BotProcess
from .models import EPHEMERAL, LOADING, FakeInteraction, FakeMessage, StoredFile
from .server import DiscordError, FakeDiscord, RequestRecord, UnknownRequestError

__all__ = [
    "EPHEMERAL",
    "LOADING",
    "BotProcess",
    "DiscordError",
    "FakeDiscord",
    "FakeInteraction",
    "FakeMessage",
    "RequestRecord",
    "StoredFile",
    "UnknownRequestError",
]
