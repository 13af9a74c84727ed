"""Pods: containers that share one network namespace (and optionally IPC and UTS), held by
a unit of their own (``rctl-pod-ID.service``) that their units are bound to."""
