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
# Part of every stored model's identity (bot.scores.update fingerprints it): change how words
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


# Dimensions of the word space the scorer compares papers in (see `fit_word_space`). Exact
# word-overlap cosines against every reference paper scored within 0.001 MRR of these on
# the quality benchmark, but cost 1.6 s per 1,024 preprints at 17,000 reference papers,
# three times the rest of scoring together.
WORD_SPACE_DIM = 256


def fit_word_space(lexical: sparse.spmatrix, dim: int = WORD_SPACE_DIM, seed: int = 0) -> np.ndarray | None:
    """(L, k) projection of word features into a space where a dot product compares two
    papers' words: each column weighted by its rarity in `lexical` (IDF), then the k
    directions along which these rows vary most (latent semantic analysis). None when
    there are too few rows or columns to find any."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    rows = sparse.csr_matrix(lexical, dtype=np.float32)
    k = min(dim, rows.shape[0] - 1, rows.shape[1] - 1)
    if k < 1 or rows.nnz == 0:
        return None
    seen = np.bincount(rows.indices, minlength=rows.shape[1])
    idf = np.log((rows.shape[0] + 1) / (seen + 1)) + 1.0
    weighted = normalize(rows.multiply(idf[None, :].astype(np.float32)).tocsr())
    svd = TruncatedSVD(k, random_state=seed).fit(weighted)
    return (idf[:, None] * svd.components_.T).astype(np.float32)


def word_vectors(lexical: sparse.spmatrix, basis: np.ndarray) -> np.ndarray:
    """(n, k) unit rows in the word space of `basis`; zero for a text with no known words."""
    vectors = np.asarray(sparse.csr_matrix(lexical) @ basis, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 1e-9)
