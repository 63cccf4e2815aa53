"""A small catalog of profiles, preprints and stored scores, for tests that need no model."""

from __future__ import annotations

import json

# -- a small catalog for tests --------------------------------------------------------------


def seed_catalog(db, profiles: list[str], preprints: list[dict], score) -> dict:
    """Profiles (5 synthetic reference papers each), preprints posted in the last days, and a
    stored score for every (profile, preprint) from `score(profile_index, preprint_index)`.

    Returns {"profiles": [ids], "preprints": [ids]}. No model: the scores are given, and every
    text gets a cached embedding (a fixed pseudo-random unit vector) so "why it matched" is
    computed without loading the model.
    """
    from datetime import date, timedelta

    from bot.db import Preprint, Profile, ReferencePaper, Score, ScoringRun
    from bot.profiles.catalog import normalise_name
    from scoring.text import content_hash

    with db.session() as session:
        run = ScoringRun(
            fingerprint="test",
            model="test",
            profiles=len(profiles),
            reference_papers=0,
            background_ids=[],
            tau=1.0,
            temperature=1.0,
        )
        session.add(run)
        profile_rows = []
        for name in profiles:
            profile = Profile(name=name, name_key=normalise_name(name), source="test")
            profile.papers = [
                ReferencePaper(
                    title=f"{name} reference paper {i}",
                    abstract=f"What {name} published, part {i}.",
                    year=2020 + i,
                    content_hash=content_hash(f"{name} reference paper {i}", str(i)),
                )
                for i in range(5)
            ]
            session.add(profile)
            profile_rows.append(profile)
        preprint_rows = []
        for i, spec in enumerate(preprints):
            title = spec.get("title", f"Preprint number {i}")
            abstract = spec.get("abstract", f"An abstract about finding number {i}.")
            row = Preprint(
                server=spec.get("server", "biorxiv"),
                identifier=spec.get("identifier", f"10.1101/2026.01.{i:02d}.{100000 + i}"),
                doi=spec.get("doi", f"10.1101/2026.01.{i:02d}.{100000 + i}"),
                title=title,
                abstract=abstract,
                authors_json=json.dumps(spec.get("authors", ["Doe, J.", "Roe, R."])),
                category=spec.get("category", "neuroscience"),
                posted=date.today() - timedelta(days=spec.get("age", 1 + i % 20)),
                url=spec.get("url", f"https://www.biorxiv.org/content/10.1101/2026.01.{i:02d}.{100000 + i}v1"),
                content_hash=content_hash(title, abstract),
            )
            session.add(row)
            preprint_rows.append(row)
        session.flush()
        for key in {r.content_hash for p in profile_rows for r in p.papers} | {p.content_hash for p in preprint_rows}:
            cache_embedding(session, key)
        for p, profile in enumerate(profile_rows):
            for q, preprint in enumerate(preprint_rows):
                session.add(Score(preprint_id=preprint.id, profile_id=profile.id, run_id=run.id, score=score(p, q)))
        return {"profiles": [p.id for p in profile_rows], "preprints": [p.id for p in preprint_rows]}


def cache_embedding(session, key: str) -> None:
    """A fixed pseudo-random unit vector for a text's content hash, as if the model had embedded it."""
    import numpy as np

    from bot.config import BUNDLED_MODEL
    from bot.db import Embedding
    from scoring.embedder import vector_key

    vector = np.random.default_rng(int(key[:8], 16)).standard_normal(384).astype(np.float32)
    vector /= np.linalg.norm(vector)
    session.merge(Embedding(model=vector_key(BUNDLED_MODEL), content_hash=key, dim=384, vector=vector.tobytes()))
