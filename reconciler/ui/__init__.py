"""The web UI served by `wp server start` at `/ui/` (SPEC §9): server-rendered pages, a small script for live
updates and actions, and the static files wp serves itself (no CDN, no build step).

`create_ui_app(store, api_key=...)` builds it; `reconciler.api.create_app` mounts it under `/ui`.
"""
