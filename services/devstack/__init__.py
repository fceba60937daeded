"""Development tooling: the whole system as local processes (see ``stack.py``)."""
