"""The embedding service: BirdNET inference on recordings from the object store.
N replicas share the ``embed`` queue."""
