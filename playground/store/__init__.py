"""The history store: every comparison and every model's answer, kept as it happens.

Open it once per process with :func:`open_store` (migrates and recovers crashed runs),
give the runner a :class:`StoreRecorder`, read it back with the repository functions (and
the dashboards' :mod:`playground.store.stats`, which imports pandas, so is not re-exported
here) inside ``with store.session() as s, s.begin():``.
"""

from playground.store import eval_models, hosted_models
from playground.store.db import (
    Store,
    create_store_engine,
    open_configured_store,
    open_store,
    upgrade_to_head,
)
from playground.store.export import EXPORT_COLUMNS, EXPORT_FORMATS, export_rows, write_export
from playground.store.filters import HistoryFilter
from playground.store.recorder import StoreRecorder
from playground.store.recovery import recover_interrupted
from playground.store.repository import (
    HistoryEntry,
    StoredComparison,
    count_comparisons,
    count_results,
    delete_comparison,
    find_cached_result,
    get_comparison,
    list_comparisons,
    list_results,
    share_comparison,
    update_comparison_meta,
)

__all__ = [
    "EXPORT_COLUMNS",
    "EXPORT_FORMATS",
    "HistoryEntry",
    "HistoryFilter",
    "Store",
    "StoreRecorder",
    "StoredComparison",
    "count_comparisons",
    "count_results",
    "create_store_engine",
    "delete_comparison",
    "eval_models",
    "export_rows",
    "find_cached_result",
    "get_comparison",
    "hosted_models",
    "list_comparisons",
    "list_results",
    "open_configured_store",
    "open_store",
    "recover_interrupted",
    "share_comparison",
    "update_comparison_meta",
    "upgrade_to_head",
    "write_export",
]
