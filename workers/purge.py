"""The ``purge_features`` task kind: delete this worker's feature store (``PURGE FEATURES``).

TASK body: ``{"request": id}`` (a fresh id per purge). RESULT: ``{"existed", "files",
"path"}``. The broker forgets its embed tasks first, so no query reads a block while it goes.
"""

from __future__ import annotations

import shutil
from typing import Any

from shift.payloads import PurgeFeaturesPayload
from workers.embed import feature_store
from workers.kinds import TaskContext, task_kind


@task_kind("purge_features")
def purge_features(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Delete the feature store and say whether there was one."""
    PurgeFeaturesPayload.from_json(payload)
    root = feature_store().root
    existed = root.exists()
    files = sum(1 for p in root.rglob("*") if p.is_file()) if existed else 0
    shutil.rmtree(root, ignore_errors=True)
    return {"existed": existed, "files": files, "path": str(root)}
