"""Word features: which words a paper uses, hashed into a fixed number of columns.

An embedding says what a paper is about; some journals are also told apart by words an
embedding blurs (a software paper's "package" and "available", an organism's name).
The default scorer's classifier reads both. Hashing needs no vocabulary, so a text's
features never depend on the catalog and a stored model is its weights alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

# Columns words are hashed into. On the quality benchmark 1,024 to 4,096 columns, and
# word pairs on top of words, all scored within 0.003 MRR of each other. Words share
# columns (a few per column over a big catalog); the classifier copes, and a stored
# model stays (embedding + 2,048) x profiles.
LEXICAL_DIM = 2048
# Part of every stored model's identity (bot.scores fingerprints it): change how words
# become columns and stored models must be refitted, not fed features they never saw.
LEXICAL_VERSION = f"words-binary-{LEXICAL_DIM}"


def lexical_features(texts: Sequence[str]) -> sparse.csr_matrix:
    """(n, LEXICAL_DIM) rows of unit length: a column is 1 when any word hashed there is in
    the text (English stop words left out), before the row is scaled to unit length."""
    from sklearn.feature_extraction.text import HashingVectorizer

    if not texts:
        return sparse.csr_matrix((0, LEXICAL_DIM), dtype=np.float32)
    vectorizer = HashingVectorizer(
        n_features=LEXICAL_DIM, alternate_sign=False, binary=True, norm="l2", stop_words="english", dtype=np.float32
    )
    return vectorizer.transform(list(texts)).tocsr()
