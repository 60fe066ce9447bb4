"""Library code the Dagster definitions share (pipelines/defs/ holds only the definitions): business-day
partitions, owners and kinds, metadata helpers, the asset check factories, the pandera schemas, the
reconciliation gates and evidence look-up, and the retention of Dagster's storage."""
