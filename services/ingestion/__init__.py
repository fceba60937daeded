"""The ingestion service: probes and subsets a job's recordings and plans its work."""
