"""Delivery: subscriptions, digests (selection, schedules, claims, ledger), Slack and email."""
