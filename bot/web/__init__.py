"""The ranking as web pages: profile pages, preprint pages, the index and feeds out, served
by `scout serve` (bot/processes/web.py composes the routes)."""
