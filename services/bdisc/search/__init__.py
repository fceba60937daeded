"""Search by example and duplicate detection over a results folder's stored embeddings:
an approximate nearest-neighbour index (usearch, cosine) kept beside the embeddings."""
