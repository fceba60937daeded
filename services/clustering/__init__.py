"""The clustering service: UMAP + HDBSCAN and review outputs, one deployment at a time."""
