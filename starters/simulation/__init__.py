"""`deployflow rollout simulate`: rehearse a spec in the real workflow under time skipping,
with recording stand-ins and a scenario of metric values (see ``command.py``)."""
