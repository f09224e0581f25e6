"""HTTP endpoints of ssi-plugin."""
