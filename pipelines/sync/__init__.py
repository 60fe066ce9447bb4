"""Stock sync services (I/O): the movement queue, batches under the exactly-once protocol, the sync
run, replay, full resync and retention. Pure logic lives in `pipelines.domain.sync`."""

from pipelines.sync.config import SyncConfig
from pipelines.sync.lock import SyncBusy, sync_lock
from pipelines.sync.service import PassReport, RunReport, StockSync

__all__ = ["PassReport", "RunReport", "StockSync", "SyncBusy", "SyncConfig", "sync_lock"]
