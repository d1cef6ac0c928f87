"""The Terraform provider through a wp server (issue 10 item 11): the server masks secrets in what it returns, so
a read settles a masked value to the state's clear one where the mask matches, and a changed secret still shows."""

from __future__ import annotations

import json

from provider.resources.base import settle
from provider.schema import Attr
from reconciler.secret_values import seal_secrets

JOB_VARIABLES = Attr("job_variables", "string", optional=True, json_string=True)


def test_a_masked_read_keeps_the_states_clear_secret_where_it_matches() -> None:
    prior = json.dumps({"env": {"API_TOKEN": "tok-1234567", "MODE": "fast"}})
    live = json.dumps(seal_secrets({"env": {"API_TOKEN": "tok-1234567", "MODE": "fast"}}))
    assert settle(JOB_VARIABLES, live, prior) == prior
    rotated = json.dumps(seal_secrets({"env": {"API_TOKEN": "tok-rotated", "MODE": "fast"}}))
    assert settle(JOB_VARIABLES, rotated, prior) == rotated  # changed outside Terraform: a diff to show
