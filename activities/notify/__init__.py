"""Notifiers for incident runbooks: PagerDuty Events v2 and Slack.

models.py         PageInput/PageResult, SlackPostInput/SlackMessage (pure pydantic)
pagerduty.py      the bounded-retry Events v2 client, the event, error classification
slack.py          the bounded-retry Slack WebClient, post-or-update, error classification
activities.py     the ``page`` and ``post_slack`` activities (secrets from the worker's env)
local_servers.py  PagerDuty and Slack servers on 127.0.0.1 for tests and the demo (``python -m``):
                  local_http.py (the recording, fault-injecting server both run on),
                  local_pagerduty.py, local_slack.py

This package exports the models only, which are safe to import from workflow code.
"""

from __future__ import annotations

from activities.notify.models import (
    Link,
    PageInput,
    PageResult,
    Severity,
    SlackMessage,
    SlackPostInput,
)

__all__ = ["Link", "PageInput", "PageResult", "Severity", "SlackMessage", "SlackPostInput"]
