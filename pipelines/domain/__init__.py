"""Pure domain logic: no Dagster, no I/O."""
