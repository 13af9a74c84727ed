"""Kubernetes YAML from rctl's containers and definitions (``rctl kube generate``)."""
