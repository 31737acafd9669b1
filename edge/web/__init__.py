"""The guards' web page: FastAPI app, templates, static files, guard accounts and sessions.

Importing this package is cheap; the app (`edge.web.app`) and server (`edge.web.server`) pull in
FastAPI and uvicorn only when the gate starts them.
"""
