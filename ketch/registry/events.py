"""What other domains keep in step with a package, inside the package's write transaction.

:func:`package_changed` runs from ``services.rebuild`` after every change to a package (publish,
deprecate, dist-tag, unpublish, access, owners), in the same transaction, so derived data (the
search index, the dependents table) commits or rolls back together with the change itself.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ketch.registry.models import Package


async def package_changed(session: AsyncSession, package: Package) -> None:
    """``package`` was changed in this transaction (``package.unpublished`` is set when it is gone)."""
    return None
