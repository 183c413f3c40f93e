"""The NetworkPolicy of an attempt: only its own pods may connect to its pods.

The rendezvous store on pod 0 (MASTER_PORT) is unauthenticated and unpickles what
reaches it, and gloo/NCCL listen on ephemeral ports that cannot be listed in advance;
so the policy admits ingress to an attempt's pods from the pods of the same attempt
only (same job and attempt labels), on any port, and from nothing else. Egress is not
restricted (storage, the API server, the Hub). It takes effect only where the CNI
enforces NetworkPolicy (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from ftjobs.render.meta import selector_labels


def network_policy(meta: dict[str, Any], *, name: str, attempt: int) -> dict[str, Any]:
    peers = {"matchLabels": selector_labels(name, attempt)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": peers,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": peers}]}],
        },
    }
