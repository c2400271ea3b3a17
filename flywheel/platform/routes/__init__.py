"""The platform's REST routes, one router per resource; `flywheel.api.app` mounts them under `/api/v1`."""
