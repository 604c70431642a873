"""Workflow payloads as the commands that only talk to Temporal see them: plain JSON.

Those commands connect with the SDK's default converter
(``TemporalConfig.connect(plain_payloads=True)``) and import no model module, so a query's
or a workflow's result is the JSON the models wrote, decoded to dicts: camelCase keys as
the Temporal UI shows them (``workflows/*_models.py`` define them), timestamps as ISO 8601
text. An update's argument is sent as a dict, which the workflow validates into its model
like one sent from the UI.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def dumps(value: Any) -> str:
    """``value`` as compact JSON, byte for byte as the models serialise it: ``--json``
    prints what the workflow returned."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def moment(text: str) -> datetime:
    """A timestamp from a payload (``2026-11-22T10:48:00.123Z``)."""
    return datetime.fromisoformat(text)
