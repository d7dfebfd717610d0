"""The HTTP edge: AWS wire format in, domain calls, AWS wire format out."""
