"""Dagster wiring: assets grouped by domain, checks, jobs, schedules and resources."""
