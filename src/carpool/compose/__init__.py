"""Composition: running routes as plain functions, for batches and WebSocket frames.

This layer knows the web app and the unit of work, never the catalog.
"""
