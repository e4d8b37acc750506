"""Every route of the account and management pages, in one list for the app factory: sign-up,
log-in/out, account settings, organization settings and package settings."""

from __future__ import annotations

from ketch.accounts import web_delete, web_pages, web_security, web_settings, web_tokens
from ketch.orgs import invitation_views, views as org_pages
from ketch.registry import views as package_pages

routes = [
    *web_pages.routes,
    *web_settings.routes,
    *web_delete.routes,
    *web_security.routes,
    *web_tokens.routes,
    *org_pages.routes,
    *invitation_views.routes,
    *package_pages.routes,
]
