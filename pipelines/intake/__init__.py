"""The intake service: verifies platform webhooks, stores raw events durably, answers fast."""
