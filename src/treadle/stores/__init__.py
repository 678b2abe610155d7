"""Storage backends behind one protocol, chosen by URL."""

from treadle.stores.base import ListQuery, Record, RecordQuery, RowUpdate, Store, open_store
from treadle.stores.memory import MemoryStore

__all__ = [
    "ListQuery", "MemoryStore", "Record", "RecordQuery", "RowUpdate", "Store", "open_store",
]
