"""The Discord bot: /stylize and friends."""
