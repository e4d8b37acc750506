"""The replication feed (CouchDB-style ``/_changes``)."""

routes: list = []
