"""Messages in the report's language (French by default, English on request).

Strings live in ``templates/i18n/<lang>.toml``; templates and rules call the same translator,
which also writes numbers the way the language does (``65,90 %`` and ``1 000`` in French).

>>> t = Translator("en")
>>> t("cell", n=3)
'cell 3'
>>> Translator("fr").percent(0.659), Translator("fr").integer(1000), Translator("en").percent(0.659)
('65,90\\xa0%', '1\\u202f000', '65.90 %')

A message's numbers are given as numbers and written in the language by their placeholder's format:
``{acc:pct}`` a fraction as a percentage, ``{gain:+.2f}`` any Python format with the language's
separators, ``{x}`` a float as points (``17,5``) or an integer with thousands separators. What ``t``
returns is a :class:`Said`: the text, which remembers its key and values, so that the scoring rules'
reasons are stored as messages and said again in another language at report time.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib

from harness.resources import bundled

LANGUAGES = ("fr", "en")
# French separates thousands with a narrow no-break space and writes "%" after a no-break space, so
# that neither "1 000" nor "65,90 %" is ever split across two lines.
_THOUSANDS = {"fr": "\u202f", "en": ","}
_DECIMAL = {"fr": ",", "en": "."}
_PERCENT = {"fr": "\u00a0%", "en": " %"}
GROUPED_FROM = 10_000  # integers in messages get thousands separators from here


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


CONCAT = "+"  # the key of a text made of several, put end to end ("a" + "b")
JOIN = "join"  # the key of texts joined by a separator (", ".join)


class Said(str):
    """A translated text that remembers the message it says (its key and values), so that it can be
    stored as a message and said again in another language. Adding two keeps both (``CONCAT``)."""

    def __new__(cls, text: str, key: str = CONCAT, values: dict | None = None) -> Said:
        """``text``, said by the message ``key`` with ``values``."""
        said = super().__new__(cls, text)
        said.key, said.values = key, values or {"parts": [str(text)]}
        return said

    def __reduce__(self):
        # pickled with its message (a log line sent to another process, a result handed back by Ray)
        return Said, (str(self), self.key, self.values)

    def __add__(self, other: str) -> Said:
        return Said(str(self) + other, CONCAT, {"parts": [self, other]})

    def __radd__(self, other: str) -> Said:
        return Said(other + str(self), CONCAT, {"parts": [other, self]})


class _Numbers(string.Formatter):
    """``str.format`` that writes numbers in one language (see the module's docstring)."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def format_field(self, value, spec: str) -> str:
        if value is None:
            return "—"
        if isinstance(value, str):
            return value  # already written ("—" for a missing number, a name): the number format is not for it
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return format(value, spec)
        if spec == "pct":
            return self.t.percent(value)
        if isinstance(value, int) and not spec:
            # a count of four digits or fewer, or a cell or line number ("line 1234"), reads best as written
            return self.t.integer(value) if abs(value) >= GROUPED_FROM else str(value)
        if not spec:
            return self.t.points(value)
        return self.t.localise(format(value, spec))


class Translator:
    """The messages of one language, looked up by key (English, then the key itself, when a message is missing)."""

    def __init__(self, language: str = "fr") -> None:
        self.language = language
        self.messages = _catalog(language)

    def __call__(self, key: str, /, **values) -> Said:
        """The message ``key`` in this language, formatted with ``values`` (numbers in its format)."""
        template = self.messages.get(key) or _catalog("en").get(key) or key
        return Said(self._numbers.vformat(template, (), values) if values else template, key, values)

    @functools.cached_property
    def _numbers(self) -> _Numbers:
        return _Numbers(self)

    def join(self, separator: str, texts) -> Said:
        """``separator.join(texts)`` that keeps each text's message (a list of model names, of sections)."""
        texts = list(texts)
        return Said(separator.join(texts), JOIN, {"sep": separator, "parts": texts})

    def localise(self, text: str) -> str:
        """A number Python wrote ("1,234.5") with this language's separators."""
        return (
            text.replace(",", "\x00").replace(".", _DECIMAL[self.language]).replace("\x00", _THOUSANDS[self.language])
        )

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
        return self.localise(f"{value:,.{digits}f}")

    def integer(self, value: float | None) -> str:
        """A whole number with this language's thousands separator ("—" for None)."""
        return self.number(value, 0)

    def points(self, value: float | None) -> str:
        """Points as the rubric gives them: no trailing zeros (``17,5``, ``20``)."""
        if value is None:
            return "—"
        return self.localise(f"{round(value, 2):g}")

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
        """A stored :class:`harness.results.Message` (or a :class:`Said`) in this language: its values that
        are messages said too; a list of them joined with commas (with its own separator for ``JOIN``).

        >>> from harness.results import Message
        >>> Translator("en").render(Message(key="cell", values={"n": 3}))
        'cell 3'
        """
        values = {name: self._value(value) for name, value in message.values.items()}
        if message.key == CONCAT:
            return "".join(values["parts"])
        if message.key == JOIN:
            return str(values["sep"]).join(values["parts"])
        return self(message.key, **{k: ", ".join(v) if isinstance(v, list) else v for k, v in values.items()})

    def _value(self, value):
        """One value of a message in this language: a message said, a list of them each said, the rest as is
        (numbers are written by the template)."""
        if isinstance(value, list):
            return [str(self._value(part)) for part in value]
        if hasattr(value, "key") and hasattr(value, "values"):
            return self.render(value)
        return value
