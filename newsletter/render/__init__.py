"""Render: Jinja + Babel + premailer once per (edition, locale), the text part,
email-client checks, previews and story pages."""
