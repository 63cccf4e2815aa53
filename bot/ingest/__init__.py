"""Ingestion: RSS/Atom feeds and the preprint APIs, into stored preprints."""
