"""Encoders, the on-disk embedding cache, precomputed vectors, embedding a triplet table, 2-D projections."""
