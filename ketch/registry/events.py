"""What other domains keep in step with a package, inside the package's write transaction.

:func:`package_changed` runs from ``services.rebuild`` after every change to a package (publish,
deprecate, dist-tag, unpublish, access, owners), in the same transaction, so derived data (the
search index, the dependents table, the replication feed) commits or rolls back together with the
change itself.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ketch.registry.models import Package
from ketch.registry.packument import PackageRows
from ketch.stats import dependents


async def package_changed(session: AsyncSession, package: Package, rows: PackageRows | None,
                          kind: str, rev: str) -> None:
    """``package`` was changed in this transaction; ``rows`` are its live rows as the packument is
    built from them (None when the package is unpublished), loaded once for every listener.
    ``kind`` names the change (publish, dist-tag, …) and ``rev`` is the packument's new ``_rev``."""
    await dependents.update(session, package, rows)
    # Imported here: the search index and the feed read registry rows (and the registry services).
    from ketch.feed import services as feed
    from ketch.search import index as search_index

    await search_index.update(session, package, rows)
    await feed.record(session, package.name, kind, rev, deleted=rows is None)
