"""Security: credential encryption (secrets); users, roles and model-group access later."""
