"""Kubernetes YAML from rctl's containers and definitions (``rctl kube generate``), and
containers from Kubernetes YAML (``rctl kube play``)."""
