"""Messages in the report's language (French by default, English on request).

Strings live in ``templates/i18n/<lang>.toml``; templates and rules call the same translator.

>>> t = Translator("en")
>>> t("cell", n=3)
'cell 3'
"""

from __future__ import annotations

import functools
import tomllib

from harness.resources import bundled

LANGUAGES = ("fr", "en")


@functools.cache
def _catalog(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    return tomllib.loads(bundled("templates", f"i18n/{language}.toml").read_text(encoding="utf-8"))


class Translator:
    """The messages of one language, looked up by key (English, then the key itself, when a message is missing)."""

    def __init__(self, language: str = "fr") -> None:
        self.language = language
        self.messages = _catalog(language)

    def __call__(self, key: str, /, **values) -> str:
        """The message ``key`` in this language, formatted with ``values``."""
        template = self.messages.get(key) or _catalog("en").get(key) or key
        return template.format(**values) if values else template

    def render(self, message) -> str:
        """A stored :class:`harness.results.Message` in this language.

        >>> from harness.results import Message
        >>> Translator("en").render(Message(key="cell", values={"n": 3}))
        'cell 3'
        """
        values = {
            name: ", ".join(self.render(part) for part in value) if isinstance(value, list) else value
            for name, value in message.values.items()
        }
        return self(message.key, **values)
