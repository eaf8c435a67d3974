"""Identity: bearer tokens (JWT), the scopes they grant, and the keys that verify them."""
