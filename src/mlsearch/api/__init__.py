"""HTTP only: OpenSearch's REST routes (routes/<family>.py), request reading and response rendering."""
