"""Reading input: triplet files in every accepted format, IDF corpora, evaluation sets."""
