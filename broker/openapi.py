"""The OpenAPI 3.1 document describing the broker's REST API."""

from __future__ import annotations

from typing import Any

from broker.search_openapi import SEARCH_PATHS, SEARCH_SCHEMAS
from broker.search_openapi import errors as _errors
from broker.search_openapi import ok as _ok
from shift import __version__
from shift.tasks import TaskState

_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "code", "message"],
                "properties": {
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "TaskSpec": {
        "type": "object",
        "required": ["kind"],
        "properties": {
            "kind": {"type": "string"},
            "payload": {"type": "object"},
            "model": {"type": ["string", "null"]},
        },
    },
    "Submitted": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in TaskState]},
            "created": {"type": "boolean"},
        },
    },
    "Task": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string"},
            "payload": {"type": "object"},
            "model": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": [s.value for s in TaskState]},
            "attempt": {"type": "integer"},
            "worker": {"type": ["string", "null"]},
            "result": {},
            "error": {"type": ["string", "null"]},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "progress": {
                "type": "object",
                "properties": {
                    "done": {"type": "number"},
                    "total": {"type": "number"},
                    "message": {"type": "string"},
                },
            },
        },
    },
    "Worker": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "device": {"type": "string"},
            "memory_bytes": {"type": "integer"},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "prefetch": {"type": "integer"},
            "inflight": {"type": "array", "items": {"type": "string"}},
            "models": {"type": "array", "items": {"type": "string"}},
            "silent_s": {"type": "number"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/v1/health": {
        "get": {
            "summary": "Broker liveness, workers and queue depth",
            "responses": {"200": _ok({"type": "object"}), **_errors()},
        }
    },
    "/v1/workers": {
        "get": {
            "summary": "Live workers",
            "responses": {
                "200": _ok(
                    {
                        "type": "object",
                        "properties": {
                            "workers": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Worker"},
                            }
                        },
                    }
                ),
                **_errors(),
            },
        }
    },
    "/v1/tasks": {
        "get": {
            "summary": "A page of tasks in submission order",
            "parameters": [
                {"name": "state", "in": "query", "schema": {"type": "string"}},
                {"name": "kind", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}},
                {"name": "after", "in": "query", "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": _ok(
                    {
                        "type": "object",
                        "properties": {
                            "tasks": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Task"},
                            },
                            "next": {"type": ["integer", "null"]},
                        },
                    }
                ),
                **_errors(400),
            },
        },
        "post": {
            "summary": "Submit one task, or several as {tasks: [...]}; identical work is reused",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/TaskSpec"},
                                {
                                    "type": "object",
                                    "properties": {
                                        "tasks": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/TaskSpec"},
                                        }
                                    },
                                },
                            ]
                        }
                    }
                },
            },
            "responses": {
                "200": _ok({"$ref": "#/components/schemas/Submitted"}, "All tasks existed"),
                "201": _ok({"$ref": "#/components/schemas/Submitted"}, "New tasks queued"),
                **_errors(400, 413),
            },
        },
    },
    "/v1/tasks/{task_id}": {
        "get": {
            "summary": "One task (committed state, live progress)",
            "parameters": [_TASK_ID],
            "responses": {"200": _ok({"$ref": "#/components/schemas/Task"}), **_errors(404)},
        }
    },
    "/v1/tasks/{task_id}/cancel": {
        "post": {
            "summary": "Cancel a queued or running task",
            "parameters": [_TASK_ID],
            "responses": {"200": _ok({"type": "object"}), **_errors(404, 409)},
        }
    },
    "/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": _ok({"type": "object"}), **_errors()},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus text metrics",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_errors(),
            },
        }
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for the broker API."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "shift broker", "version": __version__},
        "paths": {**PATHS, **SEARCH_PATHS},
        "components": {
            "schemas": {**SCHEMAS, **SEARCH_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
