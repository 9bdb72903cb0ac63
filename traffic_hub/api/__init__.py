"""The HTTP edge: routes, authentication, problem details."""
