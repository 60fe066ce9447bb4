"""The order flows' I/O: work registration from the inbox, and the flows run against the platform interfaces."""
