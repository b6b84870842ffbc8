"""Hedgehog's own validation rules, ported: per-object defaults and rules, fabric-wide checks."""
