#!/usr/bin/env python3
"""Build the licence-clean demo data set bundled in ``bot/demo_data/``.

Usage::

    python scripts/make_demo_data.py [SOURCE_JSONL]

``SOURCE_JSONL`` defaults to ``../shared/data/labeled/biorxiv_journals_dev.jsonl``
relative to the repository root. Standard library only; the output is a pure
function of the input (no randomness, no clock), so re-running it on the same file
gives byte-identical files.

Licence rule
------------
Each preprint abstract keeps its preprint's own licence, which cannot be checked
offline. We therefore ship only papers whose *published* version appeared in a
journal that publishes every article under CC BY (``JOURNALS`` below). Rows with
no published title or an empty abstract are skipped.

Split
-----
Per journal, the usable papers are sorted by preprint DOI; every 4th paper
(positions 3, 7, 11, ... counting from 0) is held out for the demo feed, the rest
form the journal's content profile. The two parts never overlap. Then:

* profiles are capped at ``PROFILE_CAP`` papers, chosen evenly spaced along the
  DOI order so the profile covers the journal's whole date range;
* the feed is capped at ``FEED_CAP`` papers per journal, taking held-out papers
  with a known preprint date first (in DOI order), then undated ones, so as few
  feed items as possible carry the placeholder date ``UNKNOWN_DATE``.

Held-out papers beyond the feed cap are simply not shipped.

Outputs (all under ``bot/demo_data/``)
--------------------------------------
* ``profiles/<slug>.jsonl`` -- one paper a line: title, abstract, doi (the
  published DOI), year (from preprint_date, null when unknown), journal.
* ``profiles.json`` -- ``[{"name", "file", "papers"}]``.
* ``biorxiv_demo.rdf`` -- the feed, as connect.biorxiv.org serves it (RSS 1.0/RDF),
  newest first.
* ``feed_manifest.json`` -- ``{"journal_of_doi": {preprint doi: journal}, "oldest",
  "newest"}`` so the demo can tell where each feed item was really published.
* ``NOTICE.md`` -- attribution, selection and counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "labeled" / "biorxiv_journals_dev.jsonl"
OUT = REPO / "bot" / "demo_data"

PROFILE_CAP = 40
FEED_CAP = 12
UNKNOWN_DATE = "2015-01-01"
CREATOR_PLACEHOLDER = "(authors omitted in demo data)"

# lower-case journal name in the source -> (display name, slug, why it is CC BY)
JOURNALS: dict[str, tuple[str, str, str]] = {
    "plos one": ("PLOS ONE", "plos-one", "PLOS: every article CC BY"),
    "plos genetics": ("PLOS Genetics", "plos-genetics", "PLOS: every article CC BY"),
    "plos computational biology": (
        "PLOS Computational Biology",
        "plos-computational-biology",
        "PLOS: every article CC BY",
    ),
    "elife": ("eLife", "elife", "every article CC BY (a few CC0)"),
    "genome biology": (
        "Genome Biology",
        "genome-biology",
        "BioMed Central; research articles 2013-2016 published CC BY",
    ),
    "g3: genes, genomes, genetics": (
        "G3: Genes, Genomes, Genetics",
        "g3-genes-genomes-genetics",
        "fully open access, CC BY",
    ),
    "scientific reports": ("Scientific Reports", "scientific-reports", "CC BY"),
    "bmc genomics": ("BMC Genomics", "bmc-genomics", "BioMed Central: CC BY"),
    "nature communications": (
        "Nature Communications",
        "nature-communications",
        "fully open access (CC BY by default) only from 2016; see caveat below",
    ),
    "peerj": ("PeerJ", "peerj", "every article CC BY"),
    "genome biology and evolution": (
        "Genome Biology and Evolution",
        "genome-biology-and-evolution",
        "fully open access, CC BY",
    ),
    "bmc bioinformatics": ("BMC Bioinformatics", "bmc-bioinformatics", "BioMed Central: CC BY"),
}
# Included only because without it fewer than 12 journals remain (11 do).
CONDITIONAL = {"nature communications"}
TARGET_JOURNALS = 12

RDF_NS = (
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:admin="http://webns.net/mvcb/" '
    'xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/" '
    'xmlns:syn="http://purl.org/rss/1.0/modules/syndication/" '
    'xmlns="http://purl.org/rss/1.0/"'
)


def load(source: Path) -> dict[str, list[dict]]:
    """Usable rows of the kept journals, grouped by journal, sorted by preprint DOI."""
    by_journal: dict[str, list[dict]] = {j: [] for j in JOURNALS}
    with source.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            journal = (row.get("journal") or "").strip().lower()
            if journal not in by_journal:
                continue
            if not row.get("title") or not (row.get("abstract") or "").strip():
                continue
            by_journal[journal].append(row)
    for rows in by_journal.values():
        rows.sort(key=lambda r: r["doi"])
    return by_journal


def choose_journals(by_journal: dict[str, list[dict]]) -> list[str]:
    """The unconditional journals, plus conditional ones only while short of the target."""
    kept = [j for j in JOURNALS if j not in CONDITIONAL and by_journal[j]]
    for j in JOURNALS:
        if j in CONDITIONAL and len(kept) < TARGET_JOURNALS and by_journal[j]:
            kept.append(j)
    return [j for j in JOURNALS if j in kept]  # keep the declared order


def evenly(rows: list[dict], cap: int) -> list[dict]:
    """At most ``cap`` rows, evenly spaced along the list (all of them if it is short)."""
    n = len(rows)
    if n <= cap:
        return list(rows)
    return [rows[(i * n) // cap] for i in range(cap)]


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(profile, feed): every 4th row by DOI order is held out for the feed; both capped."""
    profile = [r for i, r in enumerate(rows) if i % 4 != 3]
    held = [r for i, r in enumerate(rows) if i % 4 == 3]
    feed = [r for r in held if r.get("preprint_date")]
    feed += [r for r in held if not r.get("preprint_date")]
    return evenly(profile, PROFILE_CAP), feed[:FEED_CAP]


def profile_record(row: dict, display: str) -> dict:
    date = row.get("preprint_date")
    return {
        "title": row["title"].strip(),
        "abstract": " ".join(row["abstract"].split()),
        "doi": row["published_doi"],
        "year": int(date[:4]) if date else None,
        "journal": display,
    }


def item_url(doi: str) -> str:
    return f"https://www.biorxiv.org/content/{doi}v1?rss=1"


def render_rdf(items: list[tuple[dict, str]]) -> str:
    """The feed in connect.biorxiv.org's RSS 1.0/RDF layout."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<rdf:RDF {RDF_NS}>",
        '<channel rdf:about="http://connect.biorxiv.org/">',
        "<title>bioRxiv Channel: demo</title>",
        "<link>http://connect.biorxiv.org/</link>",
        "<description>bioRxiv Channel: demo. Real 2013-2015 bioRxiv preprints later published "
        "in CC BY journals, bundled with Preprint Scout for its demo.</description>",
        "<items>",
        "<rdf:Seq>",
    ]
    out += [f"<rdf:li rdf:resource={quoteattr(item_url(r['doi']))}/>" for r, _ in items]
    out += [
        "</rdf:Seq>",
        "</items>",
        "<prism:eIssn/>",
        "<prism:publicationName>bioRxiv</prism:publicationName>",
        "<prism:issn/>",
        "</channel>",
    ]
    for row, date in items:
        url = item_url(row["doi"])
        title = escape(" ".join(row["title"].split()))
        out += [
            f"<item rdf:about={quoteattr(url)}>",
            f"<title>{title}</title>",
            f"<link>{escape(url)}</link>",
            f"<description>{escape(' '.join(row['abstract'].split()))}</description>",
            f"<dc:creator>{escape(CREATOR_PLACEHOLDER)}</dc:creator>",
            f"<dc:date>{date}</dc:date>",
            f"<dc:identifier>doi:{escape(row['doi'])}</dc:identifier>",
            f"<dc:title>{title}</dc:title>",
            "<dc:publisher>Cold Spring Harbor Laboratory</dc:publisher>",
            f"<prism:publicationDate>{date}</prism:publicationDate>",
        ]
        if row.get("category"):
            out.append(f"<prism:section>{escape(row['category'].strip())}</prism:section>")
        out.append("</item>")
    out.append("</rdf:RDF>")
    return "\n".join(out) + "\n"


def render_notice(
    counts: list[tuple[str, str, int, int, int]],
    feed_undated: int,
    oldest: str,
    newest: str,
    nat_comm_needed: bool,
) -> str:
    total_p = sum(c[2] for c in counts)
    total_f = sum(c[3] for c in counts)
    rows = "\n".join(f"| {name} | {usable} | {p} | {f} |" for _, name, p, f, usable in counts)
    reasons = "\n".join(f"- **{JOURNALS[j][0]}**: {JOURNALS[j][2]}" for j, *_ in counts)
    natcomm = ""
    if nat_comm_needed:
        natcomm = (
            "\n**Nature Communications caveat.** Nature Communications became fully open "
            "access (CC BY by default) only in 2016; in 2014-2015 some of its articles were "
            "published under other licences. It is included only because without it just 11 "
            "journals qualify and the demo is meant to rank across 12. If that is not "
            "acceptable, drop it from `JOURNALS` in the script and regenerate.\n"
        )
    return f"""# Demo data: sources, licences and selection

Generated by `scripts/make_demo_data.py`; do not edit by hand. Regenerate with

```
python scripts/make_demo_data.py [path/to/biorxiv_journals_dev.jsonl]
```

(the default source is `../shared/data/labeled/biorxiv_journals_dev.jsonl`
relative to the repository root). The output is deterministic.

## What is here

- `profiles/<journal>.jsonl` and `profiles.json`: journal content profiles, real
  bioRxiv preprints (posted 2013-2015) that were later published in that journal.
  Fields: `title`, `abstract`, `doi` (the DOI of the **published** article), `year`
  (year the preprint was posted; null where the source has no date), `journal`.
- `biorxiv_demo.rdf`: a bioRxiv RSS 1.0/RDF feed, in the layout connect.biorxiv.org
  serves, of held-out preprints from the same journals (never in any profile).
  Items use the preprint DOI (`10.1101/...`) and link.
- `feed_manifest.json`: for each feed item's preprint DOI, the journal it was
  actually published in, plus the feed's oldest and newest dates, so the demo can
  check its rankings and shift the old dates into a "last N days" window.

## Sources

- Abstracts: [preprinting-a-pandemic/pandemic_preprints](https://github.com/preprinting-a-pandemic/pandemic_preprints)
  (MIT licence); the abstracts themselves come from the bioRxiv API, and each
  keeps its preprint's own licence (see below).
- Preprint -> published-article links: [greenelab/annorxiver](https://github.com/greenelab/annorxiver)
  (data CC0) and [nicholasmfraser/biorxiv](https://github.com/nicholasmfraser/biorxiv)
  (MIT; published titles and journal names).

## Licence selection

Preprint licences cannot be checked offline, so only papers whose published
version appeared in a journal that publishes every article under CC BY are
included: the same work is available under CC BY in its published form.
Journals kept and why:

{reasons}
{natcomm}
## Caveats on the content

- **Titles are the published titles**, not the preprint titles (the sources do
  not carry preprint titles); feed items therefore show the published title.
- Abstracts are the **preprint** abstracts (whitespace normalised).
- Authors are not in the sources: every feed item has the single placeholder
  creator `{CREATOR_PLACEHOLDER}`.
- Feed dates are the real preprint posting dates ({oldest} to {newest}).
  {feed_undated} feed item(s) have no known date in the source and carry the
  placeholder `{UNKNOWN_DATE}`.
- `prism:section` (bioRxiv subject) is given only where the source knows it.

## Selection and counts

Per journal, usable papers (published title and non-empty abstract) are sorted by
preprint DOI; every 4th goes to the feed, the rest to the profile. Profiles are
capped at {PROFILE_CAP} papers (evenly spaced along the DOI order), the feed at
{FEED_CAP} per journal (dated items first). Held-out papers beyond the feed cap are
not shipped.

| Journal | usable papers | profile | feed |
| --- | ---: | ---: | ---: |
{rows}
| **Total** | {sum(c[4] for c in counts)} | {total_p} | {total_f} |
"""


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    if not source.is_file():
        print(f"source not found: {source}", file=sys.stderr)
        return 1
    by_journal = load(source)
    journals = choose_journals(by_journal)

    (OUT / "profiles").mkdir(parents=True, exist_ok=True)
    index, counts, feed_items, journal_of_doi = [], [], [], {}
    for j in journals:
        display, slug, _ = JOURNALS[j]
        profile, feed = split(by_journal[j])
        path = OUT / "profiles" / f"{slug}.jsonl"
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for row in profile:
                fh.write(json.dumps(profile_record(row, display), ensure_ascii=False) + "\n")
        index.append({"name": display, "file": f"profiles/{slug}.jsonl", "papers": len(profile)})
        counts.append((j, display, len(profile), len(feed), len(by_journal[j])))
        for row in feed:
            feed_items.append((row, row.get("preprint_date") or UNKNOWN_DATE))
            journal_of_doi[row["doi"]] = display

    # Newest first; ties broken by DOI so the order is stable.
    feed_items.sort(key=lambda it: it[0]["doi"])
    feed_items.sort(key=lambda it: it[1], reverse=True)
    dates = [d for _, d in feed_items]
    oldest, newest = min(dates), max(dates)
    undated = sum(1 for r, _ in feed_items if not r.get("preprint_date"))

    def dump(name: str, obj: object) -> None:
        (OUT / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    dump("profiles.json", index)
    dump(
        "feed_manifest.json",
        {
            "journal_of_doi": {r["doi"]: journal_of_doi[r["doi"]] for r, _ in feed_items},
            "oldest": oldest,
            "newest": newest,
        },
    )
    (OUT / "biorxiv_demo.rdf").write_text(render_rdf(feed_items), encoding="utf-8")
    (OUT / "NOTICE.md").write_text(
        render_notice(counts, undated, oldest, newest, "nature communications" in journals),
        encoding="utf-8",
    )

    for _, display, p, f, usable in counts:
        print(f"{display:32s} usable {usable:3d}  profile {p:3d}  feed {f:3d}")
    print(
        f"{'total':32s}            profile {sum(c[2] for c in counts):3d}  "
        f"feed {len(feed_items):3d}  ({undated} undated feed items -> {UNKNOWN_DATE})"
    )
    print(f"feed dates {oldest} .. {newest}; wrote {OUT.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
