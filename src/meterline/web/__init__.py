"""The ASGI app, thin: parse, call a service, map errors, respond."""
