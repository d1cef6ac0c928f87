"""Fixtures of the provider tests; the harness that plays Terraform's part lives in harness.py."""

from harness import db_url, provider

__all__ = ["db_url", "provider"]
