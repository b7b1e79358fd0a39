"""Gather: sources (feed, page, folder), the guarded fetch client, sanitizing and
language detection, from fetch to stored items."""
