"""The medseg version (one place; imported by the package root, the CLI and model.json)."""
__version__ = "0.1.0"
