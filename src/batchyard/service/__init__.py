"""Use cases, one transaction each; the API edge and the CLI reach the store only through here."""
