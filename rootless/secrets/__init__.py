"""Secrets: values kept owner-only in the data directory and given to containers as a
read-only file or an environment variable, never written into an image, a commit, an
inspect document or a container's record (``rctl secret``, ``rctl run --secret``)."""
