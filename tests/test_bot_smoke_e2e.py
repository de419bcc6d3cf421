"""Smoke test: the real bot process, against the fake Discord, paints one picture for /stylize."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.fakediscord.fixtures import bot_process, fake_discord  # noqa: F401
from tests.fakediscord.server import FakeDiscord

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def photo(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", size, colour)
    # Some structure, so that style and content features are not all zero.
    for x in range(0, size[0], 8):
        for y in range(size[1]):
            image.putpixel((x, y), (255 - colour[0], 255 - colour[1], 255 - colour[2]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_stylize_delivers_the_picture_and_the_strip(fake_discord: FakeDiscord, bot_process):  # noqa: F811
    fake = fake_discord
    content = fake.add_attachment(photo((80, 60), (200, 120, 40)), "photo.png")
    style = fake.add_attachment(photo((60, 60), (20, 60, 220)), "painting.png")

    interaction = await fake.slash_command("stylize", options={"content": content, "style": style, "strength": 7,
                                                               "size": 64, "seed": 5})
    assert await interaction.wait_acked(3) < 3

    final = await interaction.wait_final(lambda m: len(m.attachments) == 2, timeout=240)
    assert not final.ephemeral and not final.loading
    picture, strip = final.images()
    assert max(picture.size) == 64
    assert strip.width > picture.width  # the three tiles side by side (or in a grid) with labels
    assert "Strength 7/10" in final.content and "seed 5" in final.content and "64 px" in final.content

    job_buttons = [item["custom_id"] for item in final.component_items()]
    assert any(custom_id.startswith("sty:more:") for custom_id in job_buttons)
    # One Upscale button per other tile of the strip (strengths 5, 7, 9 around 7): the result is at the
    # largest size already.
    assert [c.rsplit(":", 1)[1] for c in job_buttons if c.startswith("sty:upscale:")] == ["5", "9"]
    # While it was painting, the user saw progress rather than a silent "thinking…".
    assert any("Painting" in edit["content"] or "queue" in edit["content"] or "line" in edit["content"]
               for edit in interaction.edits)
    assert "Traceback" not in bot_process.log()
