"""Scores and rankings: the embedding cache, stored match scores, and the queries over them."""
