"""terraform-provider-wp: the Terraform plugin protocol 6 adapter over the wp store.

Imports reconciler's public API; reconciler never imports it.
"""
