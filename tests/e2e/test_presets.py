"""Famous paintings by name and the timelapse of a picture forming (issue 22), through the real bot.

/stylize takes either a style attachment or a preset (Discord's autocomplete offers the presets by title and
artist), the caption credits a preset, and every result has a Timelapse button that posts an animated WebP
from the journal, also after a restart.
"""

from __future__ import annotations

import io
import sqlite3

import pytest
from PIL import Image

from tests.e2e.conftest import (
    ACK_DEADLINE_S,
    CONTENT_PHOTO,
    STYLE_PAINTING,
    custom_id,
    in_progress,
    photo_bytes,
    restart_bot,
    stylize,
    wait_refused,
    wait_result,
)
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# 64 px jobs take long enough to still be painting when the bot is killed.
CONFIG_OVERRIDES = {"style": {"steps": {"48": 6, "64": 20}}}
KISS_CREDIT = "The Kiss, Gustav Klimt, 1907–1908"


async def with_preset(fake: FakeDiscord, user: str, preset: str, **options) -> object:
    content = fake.add_attachment(photo_bytes(CONTENT_PHOTO), "chelsea.jpg")
    interaction = await fake.slash_command("stylize", user=user, options={"content": content, "preset": preset,
                                                                         **options})
    assert await interaction.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    return interaction


async def choices_for(fake: FakeDiscord, typed: str) -> list[dict]:
    interaction = await fake.autocomplete("stylize", "preset", typed, user="bob")
    assert await interaction.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    return fake.choices(interaction)


def animation(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP" and image.is_animated, "the timelapse is not an animated WebP"
        frames = []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(image.convert("RGB"))
    return frames


async def timelapse_of(fake: FakeDiscord, result, user: str = "carol"):
    click = await fake.click(result, custom_id(result, "timelapse"), user=user)
    return click, await click.wait_final(lambda m: bool(m.content) and not m.loading, timeout=30)


async def test_autocomplete_offers_presets_by_artist_and_title(fake: FakeDiscord, bot: BotProcess):
    gogh = await choices_for(fake, "van gogh")
    assert len(gogh) == 3 and all("Vincent van Gogh" in c["name"] for c in gogh), gogh
    assert {c["value"] for c in gogh} >= {"vangogh_starry_night_over_the_rhone"}
    [starry] = await choices_for(fake, "starry rhone")
    assert starry["name"].startswith("Starry Night Over the Rhône — Vincent van Gogh")
    everything = await choices_for(fake, "")
    assert 10 <= len(everything) <= 25
    assert await choices_for(fake, "picasso") == []


async def test_a_preset_job_credits_the_painting_and_its_timelapse_plays(fake: FakeDiscord, bot: BotProcess):
    result = await wait_result(await with_preset(fake, "bob", "klimt_the_kiss", strength=7, preserve_colors=True))
    assert KISS_CREDIT in result.content and "Strength 7/10" in result.content, result.content

    click, posted = await timelapse_of(fake, result)
    [(name, data)] = posted.files
    assert name == "timelapse.webp" and "Strength 7" in posted.content and not posted.ephemeral
    frames = animation(data)
    assert len(frames) >= 2
    delivered = Image.open(io.BytesIO(result.files[0][1])).convert("RGB").resize(frames[-1].size)
    ends_on = sum(abs(a - b) for a, b in zip(frames[-1].tobytes(), delivered.tobytes(), strict=True))
    starts_on = sum(abs(a - b) for a, b in zip(frames[0].tobytes(), delivered.tobytes(), strict=True))
    assert ends_on < starts_on  # the painting forms and the animation ends on the result


@pytest.mark.parametrize("given, expected", [
    ({"style": "wheat"}, "not both"),
    ({}, "Attach one as style, or pick a preset"),
    ({"preset_typed": "mona lisa"}, "I don't know a preset called “mona lisa”"),
])
async def test_a_style_and_a_preset_together_neither_or_an_unknown_one_get_one_private_line(
        fake: FakeDiscord, bot: BotProcess, given: dict, expected: str):
    options = {"content": fake.add_attachment(photo_bytes(CONTENT_PHOTO), "chelsea.jpg")}
    if "style" in given:
        options |= {"style": fake.add_attachment(photo_bytes(STYLE_PAINTING), "wheat.jpg"), "preset": "klimt_the_kiss"}
    if "preset_typed" in given:
        options["preset"] = given["preset_typed"]
    interaction = await fake.slash_command("stylize", user="erin", options=options)
    assert expected in await wait_refused(interaction)


async def test_with_neither_the_painting_use_as_style_remembers_is_used_with_the_options(fake: FakeDiscord,
                                                                                         bot: BotProcess):
    painting = fake.add_attachment(photo_bytes(STYLE_PAINTING), "wheat.jpg")
    posted = await fake.user_message("look at this one", user="frank", attachments=[painting])
    remembered = await fake.context_menu("Use as style", posted, user="frank")
    await remembered.wait_final(lambda m: m.ephemeral and bool(m.content), timeout=30)
    content = fake.add_attachment(photo_bytes(CONTENT_PHOTO), "chelsea.jpg")
    interaction = await fake.slash_command("stylize", user="frank", options={"content": content, "strength": 3,
                                                                             "size": 64})
    result = await wait_result(interaction)
    assert "Strength 3/10" in result.content and "64 px" in result.content and "Style:" not in result.content


async def test_a_preset_job_survives_a_restart_and_its_timelapse_too(fake: FakeDiscord, bot: BotProcess):
    interaction = await with_preset(fake, "gina", "mondrian_tableau_no2_composition_vii", size=64)
    await fake.wait_until(lambda: in_progress(interaction), timeout=30)
    await fake.kill_bot()
    await restart_bot(fake)
    result = await wait_result(interaction)
    assert "Tableau No. 2 / Composition No. VII, Piet Mondrian, 1913" in result.content, result.content

    await fake.stop_bot()
    await restart_bot(fake)
    _, posted = await timelapse_of(fake, result)
    assert posted.files[0][0] == "timelapse.webp" and len(animation(posted.files[0][1])) >= 2


async def test_a_result_painted_before_timelapses_were_kept_says_it_has_none(fake: FakeDiscord, bot: BotProcess):
    result = await wait_result(await stylize(fake, "hal"))
    await fake.stop_bot()
    journal = bot.config_path.parent / "journal.sqlite3"
    with sqlite3.connect(journal) as db:  # what a job journaled by the previous version looks like
        assert db.execute("DELETE FROM timelapses").rowcount >= 1
    await restart_bot(fake)
    click = await fake.click(result, custom_id(result, "timelapse"), user="hal")
    line = await wait_refused(click)
    assert "no timelapse" in line
