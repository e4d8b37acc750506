"""Imports every domain's models so that Base.metadata knows all tables (for Alembic and tests)."""

from ketch.accounts import models as accounts_models  # noqa: F401
from ketch.registry import models as registry_models  # noqa: F401
from ketch.orgs import models as orgs_models  # noqa: F401,E402
from ketch.stats import models as stats_models  # noqa: F401,E402
from ketch.search import models as search_models  # noqa: F401,E402
from ketch.accounts import security_keys as security_keys_models  # noqa: F401,E402
from ketch.proxy import models as proxy_models  # noqa: F401,E402
from ketch.feed import models as feed_models  # noqa: F401,E402
