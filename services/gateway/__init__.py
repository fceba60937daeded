"""The gateway: the HTTP API of bdisc (FastAPI). It only translates HTTP to the domain:
uploads go to the object store, job requests go to the orchestrator as commands."""
