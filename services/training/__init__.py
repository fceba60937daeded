"""The training service: models, detections, search, duplicates and suggestions from
stored embeddings and labels."""
