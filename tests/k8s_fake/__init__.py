"""An in-process Kubernetes API server and kubelet for tests (no cluster can run here): `cluster` holds the
state and plays the control plane and the node, `server` speaks the HTTP API, `validation` checks request
bodies against the official client's OpenAPI models."""
