"""Send: the delivery engine (claims, leases, retries), personalization, MIME,
tokens, rate limits, workers and the email providers."""
