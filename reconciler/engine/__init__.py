"""The engine: diff, plan, template, impact and render are pure; apply drives the store."""
