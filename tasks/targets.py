"""Luigi targets of a data root: a file whose existence the data root's store answers (a local
folder or object storage), as Luigi's own targets ask their file system."""
from __future__ import annotations

from pathlib import PurePath

import luigi

from pipeline.storage.store import Store


class StoreTarget(luigi.Target):
    """One file of the data root; written only by the pipeline's own functions (through the store,
    which publishes it whole), so the target only answers whether it is there."""

    def __init__(self, store: Store, path: PurePath) -> None:
        self.store = store
        self.path = path

    def exists(self) -> bool:
        return self.store.exists(self.path)

    def __str__(self) -> str:
        return str(self.path)
