"""Records (one per measured cell) and the on-disk store they are appended to."""
from .schema import SCHEMA_VERSION, Manifest, Record
from .store import RunStore, list_runs, new_run_id

__all__ = ["SCHEMA_VERSION", "Manifest", "Record", "RunStore", "list_runs", "new_run_id"]
