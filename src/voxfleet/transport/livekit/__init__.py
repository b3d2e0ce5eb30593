"""Media over LiveKit rooms: the agent joins the caller's room (the second room link)."""
