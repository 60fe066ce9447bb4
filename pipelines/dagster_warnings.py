"""The Dagster beta, preview and superseded features this project uses on purpose, and why.

Each entry silences exactly one warning (its category and the start of its message) in every process
that loads `pipelines.definitions` (the code server, each run worker, the tests) and resolves them; `pipelines-dev`
passes the same list to `dagster dev` through PYTHONWARNINGS for the warnings the CLI itself raises.
Any other Beta/Preview/Supersession or deprecation warning still shows. Imported first by
`pipelines/definitions.py`; `pipelines_tests/test_first_run.py` checks that every entry is still raised
by the code (no stale entry) and that loading the definitions raises no Dagster warning outside the list.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class AllowedWarning:
    feature: str
    category: type[Warning]
    message: str  # the start of the warning's message, literal (no ':' or ',': PYTHONWARNINGS syntax)
    reason: str
    raised_by: str = "definitions"  # "definitions": loading pipelines.definitions; "cli": `dagster dev`

    def install(self) -> None:
        warnings.filterwarnings("ignore", message=re.escape(self.message), category=self.category)


ALLOWED: tuple[AllowedWarning, ...] = (
    AllowedWarning(
        feature="BackfillPolicy (asset parameter `backfill_policy`)",
        category=dg.BetaWarning,
        message="Parameter `backfill_policy` of function `asset` is currently in beta",
        reason="a date-range backfill of the event-based datasets and of the reconciliation runs as one run "
               "(BackfillPolicy.single_run()): one pass over the range instead of one run per day.",
    ),
    AllowedWarning(
        feature="partitioned asset checks (`partitions_def` on an AssetCheckSpec)",
        category=dg.PreviewWarning,
        message="Specifying a partitions_def on an AssetCheckSpec is currently in preview",
        reason="each day's pandera and reconciliation checks are judged per business day (README, "
               "'Range backfill'); without it a check could only judge the asset as a whole.",
    ),
    AllowedWarning(
        feature="sensor owners (`owners` of SensorDefinition)",
        category=dg.BetaWarning,
        message="Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta",
        reason="raised by Dagster itself, not by a choice of ours: resolving the Definitions re-creates each "
               "sensor that targets a job (to attach the resources) and passes `owners` along, even unset; "
               "no sensor here sets owners.",
    ),
    AllowedWarning(
        feature="`dagster dev` (superseded by `dg dev`)",
        category=dg.SupersessionWarning,
        message="Function `dev_command` is superseded",
        reason="`dg` comes with the dagster-dg-cli package, which is not a dependency (pyproject's [tool.dg] "
               "only documents the layout); `dagster dev` with workspace.yaml is supported and does the same "
               "here.",
        raised_by="cli",
    ),
)


def install() -> None:
    """Silence the allowed warnings (and nothing else) in this process."""
    for entry in ALLOWED:
        entry.install()


def pythonwarnings(existing: str = "") -> str:
    """The allow-list as a PYTHONWARNINGS value, for child processes (`dagster dev` and its tree).

    PYTHONWARNINGS only names builtin categories here (a dagster category would import dagster at
    interpreter start), so each entry matches on its message, which is specific enough.
    """
    entries = [f"ignore:{e.message}:Warning" for e in ALLOWED]
    return ",".join([existing, *entries] if existing else entries)


install()
