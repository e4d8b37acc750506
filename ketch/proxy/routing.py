"""Which uplink, if any, a package name is looked up on: the first route whose glob matches decides.

A name whose route has no uplink is local only and is never asked of any upstream, whatever is
cached (dependency-confusion protection: a private ``@corp/x`` cannot be shadowed from outside).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from ketch.config import Route, Settings


class Router:
    def __init__(self, settings: Settings):
        routes = list(settings.routes)
        if settings.uplinks and not routes:
            routes = [Route(packages="*", uplink=next(iter(settings.uplinks)))]
        self.routes = routes
        self._memo: dict[str, Route | None] = {}

    def route_for(self, name: str) -> Route | None:
        if name in self._memo:
            return self._memo[name]
        found = next((r for r in self.routes if fnmatchcase(name, r.packages)), None)
        if len(self._memo) > 100_000:
            self._memo.clear()
        self._memo[name] = found
        return found

    def uplink_for(self, name: str) -> str | None:
        route = self.route_for(name)
        return route.uplink if route is not None else None
