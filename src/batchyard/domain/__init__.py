"""Entities, enums and rules that hold whatever the wire format or the store."""
