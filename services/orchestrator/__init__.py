"""The orchestrator service: the single writer of job state (consumes the events stage)."""
