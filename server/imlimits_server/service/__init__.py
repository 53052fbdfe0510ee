"""The gRPC layer: validate a request, call the core or the store, translate the result."""
