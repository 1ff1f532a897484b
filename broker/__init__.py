"""The broker: aiohttp REST, the ZeroMQ ROUTER loop, worker liveness and the query store."""
