"""Every REST route: method, path and declared handler, in one table.

``broker.api`` mounts these and ``broker.openapi`` documents them; the OpenAPI test checks
that every route is documented.
"""

from __future__ import annotations

from broker import search_api, settings_api, task_api
from broker.rest_errors import Handler

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    *task_api.ROUTES,
    *search_api.ROUTES,
    *settings_api.ROUTES,
)
"""Every route: method, path, handler."""
