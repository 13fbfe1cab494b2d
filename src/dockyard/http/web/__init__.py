"""The web hub: server-rendered pages (Jinja2) for people, on the same services and authorizer as the Hub API."""
