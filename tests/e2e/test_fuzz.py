"""The hostile upload corpus (tests/hostile_images.py) sent through Discord to the real bot, one by one."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    JOB_TIMEOUT_S,
    STYLE_PAINTING,
    decode,
    is_finished,
    is_result,
    photo_bytes,
    stylize,
    wait_refused,
    wait_result,
)
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess
from tests.hostile_images import encode, hostile_corpus, quadrants

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CORPUS = hostile_corpus()
DEFAULT_SIZE = 48  # [style] default_size in tests/e2e.config.toml
# VGG-19 halves the picture four times before relu5_1: a thinner side has nothing left to compare.
MIN_PAINTABLE_SIDE = 16
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # the bot's default [limits] max_attachment_bytes


def painting(fake: FakeDiscord) -> dict:
    return fake.add_attachment(photo_bytes(STYLE_PAINTING, max_side=64), "wheat_field.jpg")


@pytest.mark.parametrize("name", sorted(CORPUS))
async def test_hostile_upload_gets_a_result_or_one_friendly_line(fake: FakeDiscord, bot: BotProcess, name: str):
    sample = CORPUS[name]
    # Pillow-sniffed, not trusted from the name: Discord's content_type comes from the extension.
    upload = fake.add_attachment(sample.data, sample.filename)
    interaction = await stylize(fake, f"fuzz-{name}", content=upload, style=painting(fake))

    if not sample.accepted:
        refusal = await wait_refused(interaction)
        assert sample.hint in refusal.lower(), refusal
        return
    width, height = sample.size
    if min(width, height) * DEFAULT_SIZE / max(width, height) < MIN_PAINTABLE_SIDE:
        # Too thin to paint at this size: a result or a line about this picture, not "something went wrong".
        ended = await interaction.wait_final(is_finished, timeout=JOB_TIMEOUT_S)
        if not is_result(ended):
            assert sample.filename in ended.content and "went wrong" not in ended.content, ended.content
            return
    result = await wait_result(interaction)
    image = decode(result.files[0][1])
    assert max(image.size) == DEFAULT_SIZE
    if width != height:
        assert (image.width > image.height) == (width > height), \
            f"{sample.filename} is {width}×{height} as shown, the result is {image.size}"


@pytest.mark.parametrize("role", ["content", "style"])
async def test_over_the_size_limit_or_not_declared_an_image_gets_one_friendly_line(
        fake: FakeDiscord, bot: BotProcess, role: str):
    picture = encode(quadrants(), "PNG")
    too_large = fake.add_attachment(picture, "poster.png", declared_size=MAX_ATTACHMENT_BYTES + 1)
    assert "poster.png" in await wait_refused(await stylize(fake, "fuzz-size", **{role: too_large}))
    not_an_image = fake.add_attachment(picture, "photo.png", content_type="application/pdf")
    assert "photo.png" in await wait_refused(await stylize(fake, "fuzz-type", **{role: not_an_image}))


async def test_an_image_served_with_a_wrong_content_type_header_is_painted(fake: FakeDiscord, bot: BotProcess):
    # Only the payload's content_type is Discord's word; the CDN header is not what the bot should rely on.
    upload = fake.add_attachment(encode(quadrants(), "PNG"), "photo.png", served_content_type="text/html")
    await wait_result(await stylize(fake, "fuzz-header", content=upload, style=painting(fake)))


async def test_a_picture_whose_type_discord_could_not_tell_is_painted_and_untyped_junk_refused_in_words(
        fake: FakeDiscord, bot: BotProcess):
    # Discord leaves content_type out when the name does not tell it: a photo saved without an extension.
    untyped = fake.add_attachment(encode(quadrants(), "PNG"), "IMG_2041")
    assert "content_type" not in untyped
    await wait_result(await stylize(fake, "fuzz-untyped", content=untyped, style=painting(fake)))
    junk = fake.add_attachment(b"not a picture at all" * 50, "notes")
    assert "notes" in await wait_refused(await stylize(fake, "fuzz-untyped-junk", content=junk))


async def test_the_bot_keeps_serving_after_the_corpus(fake: FakeDiscord, bot: BotProcess):
    result = await wait_result(await stylize(fake, "bob"))
    assert max(decode(result.files[0][1]).size) == DEFAULT_SIZE
    assert bot.running and "Traceback" not in bot.log()
