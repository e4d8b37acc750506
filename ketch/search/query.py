"""Parse the ``text`` parameter of ``/-/v1/search``: free words plus npm's qualifiers.

Qualifiers (npm docs and npms.io): ``author:``, ``maintainer:``, ``scope:``, ``keywords:`` (``,`` = or,
``+`` = and, a leading ``-`` excludes), ``is:``/``not:`` with ``deprecated``, ``unstable`` or
``insecure``, and ``boost-exact:false``. Values are lower-cased and trimmed as npms does; a value
may be quoted (``author:"jane doe"``). Unknown ``word:word`` tokens stay ordinary text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FLAGS = ("deprecated", "unstable", "insecure")
MAX_KEYWORDS = 10
MAX_KEYWORD_LENGTH = 50
MAX_TEXT = 512
QUALIFIERS = ("author", "maintainer", "scope", "keywords", "is", "not", "boost-exact")
_TOKEN = re.compile(r'([a-z-]+):("[^"]*"|\S*)|"([^"]*)"|(\S+)', re.IGNORECASE)
# Dropped from free text (both backends): they match nearly every README and say nothing.
STOP_WORDS = frozenset("a an and are as at be by for from in is it of on or that the this to with".split())


class BadQuery(ValueError):
    """The query cannot be understood; the message is shown to the client as is."""


@dataclass
class Query:
    words: list[str] = field(default_factory=list)  # free text, lower-case, in order
    author: str | None = None
    maintainer: str | None = None
    scope: str | None = None
    # keywords: any of these groups, where every keyword of a group must be present
    keyword_groups: list[list[str]] = field(default_factory=list)
    keywords_excluded: list[str] = field(default_factory=list)
    is_flags: set[str] = field(default_factory=set)
    not_flags: set[str] = field(default_factory=set)
    boost_exact: bool = True

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def terms(self) -> list[str]:
        """Words worth matching in full text: no stop words, only letters and digits inside."""
        out = []
        for word in self.words:
            for part in re.split(r"[^\w]+", word):
                if part and part not in STOP_WORDS and part not in out:
                    out.append(part)
        return out

    @property
    def has_filter(self) -> bool:
        return bool(self.author or self.maintainer or self.scope or self.keyword_groups or self.keywords_excluded
                    or self.is_flags or self.not_flags)


def parse(text: str) -> Query:
    if len(text) > MAX_TEXT:
        raise BadQuery(f"text must be at most {MAX_TEXT} characters.")
    query = Query()
    for match in _TOKEN.finditer(text):
        key, value, quoted, word = match.groups()
        if key is not None and key.lower() in QUALIFIERS:
            _qualifier(query, key.lower(), value.strip('"').strip().lower())
        else:
            word = (quoted if quoted is not None else match.group(0)).strip().lower()
            if word:
                query.words.append(word)
    query.is_flags -= query.not_flags  # npms: when a flag is in both, not wins
    return query


def _qualifier(query: Query, key: str, value: str) -> None:
    if not value:
        raise BadQuery(f"The {key}: qualifier needs a value, e.g. {key}:{_EXAMPLES[key]}.")
    if key in ("author", "maintainer"):
        setattr(query, key, value.lstrip("@"))
    elif key == "scope":
        query.scope = value.lstrip("@").rstrip("/")
    elif key == "keywords":
        _keywords(query, value)
    elif key in ("is", "not"):
        if value not in FLAGS:
            raise BadQuery(f"{key}:{value} is not supported; use {key}:" + f", {key}:".join(FLAGS) + ".")
        (query.is_flags if key == "is" else query.not_flags).add(value)
    elif key == "boost-exact":
        if value not in ("true", "false"):
            raise BadQuery("boost-exact must be true or false.")
        query.boost_exact = value == "true"


def _keywords(query: Query, value: str) -> None:
    count = 0
    for group in value.split(","):
        wanted = []
        for keyword in group.split("+"):
            keyword = keyword.strip()
            if not keyword:
                continue
            count += 1
            if len(keyword.lstrip("-")) > MAX_KEYWORD_LENGTH:
                raise BadQuery(f"A keyword may have at most {MAX_KEYWORD_LENGTH} characters.")
            if keyword.startswith("-"):
                if keyword.lstrip("-"):
                    query.keywords_excluded.append(keyword.lstrip("-"))
            else:
                wanted.append(keyword)
        if wanted:
            query.keyword_groups.append(wanted)
    if count == 0 or count > MAX_KEYWORDS:
        raise BadQuery(f"keywords: takes 1 to {MAX_KEYWORDS} keywords.")


_EXAMPLES = {"author": "alice", "maintainer": "alice", "scope": "babel", "keywords": "http,server",
             "is": "unstable", "not": "deprecated", "boost-exact": "false"}
