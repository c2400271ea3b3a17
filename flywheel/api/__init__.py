"""The REST API door: FastAPI app assembly, the session and auth dependencies, and the error handler."""
