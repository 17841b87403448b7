"""commands layer (see DESIGN: cli -> engine -> adapters -> core)."""
