"""Shared pieces of the REST API: error format, OpenAPI views. Apps bring their own resources."""
