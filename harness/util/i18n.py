"""Messages in the report's language (French by default, English on request).

Strings live in ``templates/i18n/<lang>.toml``; templates and rules call the same translator,
which also writes numbers the way the language does (``65,90 %`` and ``1 000`` in French).

>>> t = Translator("en")
>>> t("cell", n=3)
'cell 3'
>>> Translator("fr").percent(0.659), Translator("fr").integer(1000), Translator("en").percent(0.659)
('65,90\\xa0%', '1\\u202f000', '65.90 %')
"""

from __future__ import annotations

import functools
import re
import tomllib

from harness.resources import bundled

LANGUAGES = ("fr", "en")
# French separates thousands with a narrow no-break space and writes "%" after a no-break space, so
# that neither "1 000" nor "65,90 %" is ever split across two lines.
_THOUSANDS = {"fr": "\u202f", "en": ","}
_DECIMAL = {"fr": ",", "en": "."}
_PERCENT = {"fr": "\u00a0%", "en": " %"}


@functools.cache
def _catalog(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    return tomllib.loads(bundled("templates", f"i18n/{language}.toml").read_text(encoding="utf-8"))


STORED_PREFIX = "why_"  # the English sentences ingest and the workers store, and their translations


@functools.cache
def _stored_patterns() -> list[tuple[str, re.Pattern]]:
    """Each ``why_*`` English template as a pattern that captures its ``{values}``, longest first (the most
    specific wins)."""
    templates = {k: v for k, v in _catalog("en").items() if k.startswith(STORED_PREFIX)}
    patterns = []
    for key, template in sorted(templates.items(), key=lambda item: -len(item[1])):
        parts = re.split(r"\{(\w+)\}", template)
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
        patterns.append((key, re.compile(regex, re.DOTALL)))
    return patterns


class Translator:
    """The messages of one language, looked up by key (English, then the key itself, when a message is missing)."""

    def __init__(self, language: str = "fr") -> None:
        self.language = language
        self.messages = _catalog(language)

    def __call__(self, key: str, /, **values) -> str:
        """The message ``key`` in this language, formatted with ``values``."""
        template = self.messages.get(key) or _catalog("en").get(key) or key
        return template.format(**values) if values else template

    def plural(self, key: str, n: int | float) -> str:
        """``key_one`` or ``key_other`` with ``n``: French treats 0 and 1 as singular, English only 1.

        >>> Translator("fr").plural("n_epochs", 1), Translator("en").plural("n_epochs", 0)
        ('1 époque', '0 epochs')
        """
        one = abs(n) < 2 if self.language == "fr" else n == 1
        return self(f"{key}_{'one' if one else 'other'}", n=self.points(n))

    def number(self, value: float | None, digits: int = 2) -> str:
        """``value`` with ``digits`` decimals and this language's separators ("—" for None)."""
        if value is None:
            return "—"
        text = f"{value:,.{digits}f}"
        return (
            text.replace(",", "\x00").replace(".", _DECIMAL[self.language]).replace("\x00", _THOUSANDS[self.language])
        )

    def integer(self, value: float | None) -> str:
        """A whole number with this language's thousands separator ("—" for None)."""
        return self.number(value, 0)

    def points(self, value: float | None) -> str:
        """Points as the rubric gives them: no trailing zeros (``17,5``, ``20``)."""
        if value is None:
            return "—"
        return f"{round(value, 2):g}".replace(".", _DECIMAL[self.language])

    def percent(self, fraction: float | None, digits: int = 2) -> str:
        """A fraction in [0, 1] as a percentage (``0.659`` → ``65,90 %``)."""
        return "—" if fraction is None else self.number(100 * fraction, digits) + _PERCENT[self.language]

    def stored(self, text: str | None, depth: int = 2) -> str | None:
        """A reason that ingest or a worker stored in English, in this language: matched against the English
        ``why_*`` templates of the translation files and written with this language's (its values translated
        too: "cell 8, line 12"). Text that matches no template is returned as it is.

        >>> Translator("fr").stored("top-level plotting")
        'graphique au premier niveau'
        """
        if not text or self.language == "en":
            return text
        for key, pattern in _stored_patterns():
            found = pattern.fullmatch(text)
            if found:
                values = {k: self.stored(v, depth - 1) if depth else v for k, v in found.groupdict().items()}
                return self(key, **values)
        return text

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
