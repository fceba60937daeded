"""The export service: reviewed labels -> training clips in the object store."""
