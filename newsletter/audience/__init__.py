"""Audience: subscribers (CSV in and out), segments, self-service and privacy."""
