"""The scoring service: storage, auth, the one scoring path, and the HTTP API."""
