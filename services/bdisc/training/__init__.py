"""From labels to a classifier: a head trained on stored BirdNET embeddings, kept as a
model folder, exported as a BirdNET-Analyzer custom classifier, applied to embeddings."""
