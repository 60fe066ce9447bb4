"""Order flows across channels, written to the commerce platform (pure decisions; I/O in pipelines/store/order_flows.py)."""
