"""Clients of the services carpool calls (adapters: they speak HTTP, the domain does not)."""
