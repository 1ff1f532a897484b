"""OpenAPI entries of the search routes (catalog and queries), merged by ``broker.openapi``."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def errors(*statuses: int) -> dict[str, Any]:
    """Responses for the given error statuses (and 401), all with the one error shape."""
    return {
        str(s): {"description": "Error", "content": {"application/json": {"schema": _ERROR}}}
        for s in (401, *statuses)
    }


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """A 2xx response whose JSON body has ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": _ref(item)}}}


_QUERY_ID = {"name": "query_id", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_WAIT = {
    "name": "wait",
    "in": "query",
    "schema": {"type": "boolean"},
    "description": "wait until the measured columns are known",
}

_WAIT_QUERY = {
    "name": "wait",
    "in": "query",
    "schema": {"type": "boolean"},
    "description": "answer once the query is final",
}

SEARCH_SCHEMAS: dict[str, Any] = {
    "CatalogEntry": {
        "type": "object",
        "description": "A catalog row (the vocabulary's columns) plus status, error, key, spec",
        "properties": {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "ready", "failed"]},
            "error": {"type": ["string", "null"]},
            "key": {"type": "string"},
            "spec": {"type": "object"},
        },
        "additionalProperties": True,
    },
    "Table": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "array"}},
        },
    },
    "Result": {
        "type": "object",
        "properties": {
            "tables": {"type": "array", "items": _ref("Table")},
            "message": {"type": "string"},
        },
    },
    "Query": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "session": {"type": "string"},
            "statement": {"type": "string", "description": "canonical SHiFT-QL text"},
            "kind": {"type": "string", "description": "the statement's node tag"},
            "status": {
                "type": "string",
                "enum": ["queued", "running", "succeeded", "failed", "cancelled"],
            },
            "wait": {"type": "boolean"},
            "progress": {
                "type": "object",
                "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}},
            },
            "result": {"oneOf": [_ref("Result"), {"type": "null"}]},
            "error": {"type": ["object", "null"]},
            "created_at": {"type": "number"},
            "finished_at": {"type": ["number", "null"]},
        },
    },
    "Task2VecRequest": {
        "type": "object",
        "required": ["probe", "datasets"],
        "properties": {
            "probe": {"type": "string", "description": "a registered model (the probe)"},
            "datasets": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "session": {"type": "string", "default": "default"},
        },
    },
    "FinetuneRequest": {
        "type": "object",
        "required": ["models", "datasets"],
        "properties": {
            "models": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "datasets": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "training sets, concatenated",
            },
            "options": {
                "type": "object",
                "description": "FINETUNE options: learning_rate, epochs, batch_size, "
                "val_fraction, weight_decay, seed, test (a dataset name)",
            },
            "session": {"type": "string", "default": "default"},
        },
    },
    "QueryRequest": {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "SHiFT-QL text (one or more statements)"},
            "tree": {"type": "object", "description": "canonical JSON of a statement or script"},
            "session": {"type": "string", "default": "default"},
        },
    },
}


def _catalog(kind: str) -> dict[str, Any]:
    plural = kind + "s"
    return {
        f"/v1/{plural}": {
            "get": {
                "summary": f"Every registered {kind}",
                "responses": {"200": ok(_list(plural, "CatalogEntry")), **errors()},
            },
            "post": {
                "summary": f"Register a {kind}: spec JSON or name plus REGISTER columns",
                "parameters": [_WAIT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": ok(_ref("CatalogEntry"), "Already registered with this spec"),
                    "201": ok(_ref("CatalogEntry"), "Registered; measuring"),
                    **errors(400, 409),
                },
            },
        },
        f"/v1/{plural}/{{name}}": {
            "get": {
                "summary": f"One {kind}",
                "parameters": [_NAME],
                "responses": {"200": ok(_ref("CatalogEntry")), **errors(404)},
            }
        },
    }


SEARCH_PATHS: dict[str, Any] = {
    **_catalog("model"),
    **_catalog("dataset"),
    "/v1/queries": {
        "post": {
            "summary": "Run SHiFT-QL: one query per statement, in order within the session",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("QueryRequest")}},
            },
            "responses": {
                "202": ok(_list("queries", "Query"), "Queued"),
                **errors(400),
            },
        },
        "get": {
            "summary": "Recent queries, newest first",
            "parameters": [
                {"name": "session", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}},
            ],
            "responses": {"200": ok(_list("queries", "Query")), **errors(400)},
        },
    },
    "/v1/queries/{query_id}": {
        "get": {
            "summary": "One query with its progress, result or error",
            "parameters": [_QUERY_ID],
            "responses": {"200": ok(_ref("Query")), **errors(404)},
        }
    },
    "/v1/queries/{query_id}/events": {
        "get": {
            "summary": "Server-Sent Events: 'progress' {done,total}, then 'done' with the Query",
            "parameters": [_QUERY_ID],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **errors(404),
            },
        }
    },
    "/v1/task2vec": {
        "post": {
            "summary": "Task2Vec distance matrix of datasets through a probe (SELECT vec)",
            "parameters": [_WAIT_QUERY],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Task2VecRequest")}},
            },
            "responses": {
                "202": ok(_ref("Query"), "Queued (or finished with ?wait)"),
                **errors(400),
            },
        }
    },
    "/v1/finetunes": {
        "post": {
            "summary": "Fine-tune models; the results are registered as finetuned models",
            "parameters": [_WAIT_QUERY],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("FinetuneRequest")}},
            },
            "responses": {
                "202": ok(_ref("Query"), "Queued (or finished with ?wait)"),
                **errors(400),
            },
        }
    },
    "/v1/queries/{query_id}/cancel": {
        "post": {
            "summary": "Cancel a query and its tasks no other query needs",
            "parameters": [_QUERY_ID],
            "responses": {"200": ok(_ref("Query")), **errors(404, 409)},
        }
    },
}
