"""`scout demo` / `make demo`: the main job, offline, on the bundled sample data.

The sample feed is served over loopback HTTP the way bioRxiv serves it, so the demo
runs the real poller (conditional GET, parsing, dedup), the real model and the real
scoring, then prints two rankings and one preprint's journal match.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console

DATA = Path(__file__).parent / "demo_data"
RANKED = ("eLife", "Genome Biology")
MATCHED_INDEX = 0  # the newest item in the sample feed


@contextmanager
def serve_feed(path: Path):
    """Serve one RSS file at /biorxiv_xml.php on 127.0.0.1, with an ETag like a real server."""
    body = path.read_bytes()
    etag = f'"{len(body):x}-{int(path.stat().st_mtime):x}"'

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_demo(out: Console, err: Console, keep: Path | None = None) -> None:
    from bot.cli import app

    manifest = json.loads((DATA / "feed_manifest.json").read_text())
    profiles = json.loads((DATA / "profiles.json").read_text())
    oldest, newest = sample_span(manifest)
    days = (newest - oldest).days + 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, serve_feed(DATA / "biorxiv_demo.rdf") as base:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db_file = folder / "scout-demo.db"
        db_file.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{db_file}"
        os.environ["SCOUT_BIORXIV_RSS_URL"] = base

        def scout(*args: str) -> None:
            out.rule(f"[bold]$ scout {' '.join(_quote(a) for a in args)}", align="left")
            app(list(args), standalone_mode=False)

        scout("feeds", "add", "biorxiv:all", "--name", "bioRxiv sample (served locally)")
        for entry in profiles:
            app(
                ["profiles", "add", entry["name"], "--papers", str(DATA / entry["file"]), "--no-score"],
                standalone_mode=False,
            )
        scout("profiles")
        scout("poll")
        scout("feeds")
        for name in RANKED:
            scout("rank", name, "--days", str(days), "--until", newest.isoformat(), "--top", "5")
        doi = _newest_doi(manifest)
        scout("match", doi, "--days", str(days), "--until", newest.isoformat())
        out.print(f"[dim]{doi} was later published in {manifest['journal_of_doi'][doi]}.[/dim]")
        _check(out, manifest, days, newest)
        out.rule()
        out.print(
            f"demo finished in {time.monotonic() - started:.0f} s" + (f"; database kept at {db_file}" if keep else "")
        )


def sample_span(manifest: dict | None = None) -> tuple[date, date]:
    """The posting dates of the sample feed's oldest and newest preprints."""
    if manifest is None:
        manifest = json.loads((DATA / "feed_manifest.json").read_text())
    return date.fromisoformat(manifest["oldest"]), date.fromisoformat(manifest["newest"])


def _newest_doi(manifest: dict) -> str:
    return next(iter(manifest["journal_of_doi"]))


def _check(out: Console, manifest: dict, days: int, until: date) -> None:
    """How often the journal a held-out preprint went to is among its top 3 matches."""
    from bot.cli.common import scoring_context
    from bot.config import load_settings
    from bot.db import Database
    from bot.scores.rankings import find_preprint, match_preprint

    settings = load_settings()
    db = Database(settings.database_url)
    hits = total = 0
    with db.session() as session:
        scoring_context(settings)
        for doi, journal in manifest["journal_of_doi"].items():
            result = match_preprint(session, find_preprint(session, doi), days=days, until=until, limit=3)
            hits += journal in [m.profile for m in result.matches]
            total += 1
    db.dispose()
    out.rule("[bold]how well did it do?", align="left")
    out.print(
        f"For {hits} of {total} sample preprints ({100 * hits / max(total, 1):.0f}%), the journal that "
        f"later published it is among its top 3 of {len(json.loads((DATA / 'profiles.json').read_text()))} profiles."
    )


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
