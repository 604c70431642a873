"""The clusters a worker reaches: one Kubernetes ``ApiClient`` per kubeconfig context.

A spec names a context (``platform.kubernetes.deployment.context``); the worker holds the
credentials. Which clusters it knows:

- a context named: that context of the worker's kubeconfig (``$KUBECONFIG``, several files
  joined by ``:``, else ``~/.kube/config``);
- no context: the in-cluster service account when the worker runs in a pod
  (``$KUBERNETES_SERVICE_HOST``), else the kubeconfig's current context.

Clients are built on first use and kept (``KubeClients``, a field of ``Clients``). Their own
retries are short and finite (Temporal's retry policy owns retrying), and every call the
activities make passes ``_request_timeout``.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Final

from activities.errors import KUBERNETES_NOT_CONFIGURED, failure

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

REQUEST_TIMEOUT: Final = (3.05, 20.0)
"""``_request_timeout`` of every non-watch call: connect, read (seconds)."""
CONNECT_RETRIES: Final = 2
"""urllib3 retries of a connection that could not be made; reads are never retried by the
client (a PUT or POST read back twice is Temporal's business, and idempotent)."""


class KubeClients:
    """An ``ApiClient`` per context, built once from the worker's configuration."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._lock = threading.Lock()
        self._clients: dict[str | None, ApiClient] = {}

    def api(self, context: str | None) -> ApiClient:
        """The client for ``context`` (None: in-cluster, else the current context)."""
        with self._lock:
            client = self._clients.get(context)
            if client is None:
                client = self._clients[context] = self._build(context)
            return client

    def _build(self, context: str | None) -> ApiClient:
        import urllib3
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        configuration = client.Configuration()
        path = self._kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
            else:
                config.load_kube_config(
                    config_file=path,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (ConfigException, OSError) as e:
            which = f"context {context!r}" if context else "a default cluster"
            raise failure(
                KUBERNETES_NOT_CONFIGURED,
                f"the worker has no {which} (kubeconfig {path}): {e}",
            ) from None
        configuration.retries = urllib3.Retry(
            total=CONNECT_RETRIES,
            connect=CONNECT_RETRIES,
            read=0,
            status=0,
            redirect=0,
            backoff_factor=0.2,
        )
        return client.ApiClient(configuration)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
