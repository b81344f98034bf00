"""Pounce: domain intelligence whose logic lives in PostgreSQL."""

__version__ = "0.1.0"
