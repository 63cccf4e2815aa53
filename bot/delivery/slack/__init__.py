"""Slack: the Bolt app (slash commands, buttons, App Home), digest delivery and OAuth installs."""
