"""`make bench`: the service against a no-op gRPC server on the same stack, driven by the same load."""
