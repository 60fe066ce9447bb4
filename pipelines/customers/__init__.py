"""The single customer view between the commerce platform and the store system: the sync pass (`sync`)."""
