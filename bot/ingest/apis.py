"""Clients for the public APIs behind backfill, journal profiles and on-demand matches.

Each client is small, takes a `PoliteHTTP` (one injected httpx.Client, a base URL, the
service's request interval) and pairs a pure parser with the HTTP call. `Sources` wires
all four from the settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bot.config import Settings
from bot.ingest.arxiv import ArxivAPI
from bot.ingest.biorxiv import BiorxivAPI
from bot.ingest.crossref import CrossrefAPI
from bot.ingest.http import PoliteHTTP, SourceError
from bot.ingest.openalex import OpenAlexAPI

__all__ = ["Sources", "SourceError", "PoliteHTTP"]


@dataclass
class Sources:
    biorxiv: BiorxivAPI
    crossref: CrossrefAPI
    openalex: OpenAlexAPI
    arxiv: ArxivAPI

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        client: httpx.Client,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
        ends_at: float | None = None,
    ) -> Sources:
        """All four clients; each API call ends within `deadline` (default SCOUT_API_DEADLINE)
        seconds, and none runs past `ends_at` (a time.monotonic() time, shared by every call)."""

        def polite(base: str, service: str, interval: float) -> PoliteHTTP:
            return PoliteHTTP(
                client,
                base,
                service,
                min_interval=interval,
                retries=settings.api_retries,
                backoff=settings.api_backoff,
                sleep=sleep,
                deadline=deadline or settings.api_deadline,
                ends_at=ends_at,
            )

        mailto = settings.contact_email
        return cls(
            biorxiv=BiorxivAPI(polite(settings.biorxiv_api_url, "bioRxiv API", settings.biorxiv_api_interval)),
            crossref=CrossrefAPI(polite(settings.crossref_url, "Crossref", settings.crossref_interval), mailto),
            openalex=OpenAlexAPI(polite(settings.openalex_url, "OpenAlex", settings.openalex_interval), mailto),
            arxiv=ArxivAPI(polite(settings.arxiv_api_url, "arXiv API", settings.arxiv_api_interval)),
        )
