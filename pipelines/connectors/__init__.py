"""HTTP clients for the external platforms (production code; never imports the simulators)."""
