"""Provider webhook events: each provider's verifier (signature first, then parsing) and
its parser, beside the providers; ``newsletter.web.webhooks`` only routes requests here
and applies the events to the store."""
