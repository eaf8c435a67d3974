"""carpool: every route callable singly, in a batch, or over a WebSocket, on one unit of work."""
