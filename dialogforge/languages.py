"""Languages of a run: BCP-47 tags, their names, and what each role is told about them.

A run, a domain or a persona may name the language its dialogues are written
in (``--language de``, ``pt-BR``, ``ja``). The tag is checked and normalized
once, where it enters (flags, config, seed files), so everything downstream
compares tags as strings. Prompts get the language's English name beside the
tag (models follow "German (de)" more reliably than a bare tag), and the
rule check (``dialogforge.dataset.language_check``) compares the primary
subtag with what a language-identification model reads in each turn.
"""

from __future__ import annotations

import re

from dialogforge.errors import ConfigError

# language (2-3 letters; the 5-8 letter registered form is unused in practice), extlang, script, region, variants, extensions, private use
_TAG = re.compile(
    r"^(?P<language>[a-zA-Z]{2,3})(-[a-zA-Z]{3}){0,3}(-(?P<script>[a-zA-Z]{4}))?"
    r"(-(?P<region>[a-zA-Z]{2}|\d{3}))?(-([a-zA-Z\d]{5,8}|\d[a-zA-Z\d]{3}))*(-[a-wyzA-WYZ\d](-[a-zA-Z\d]{2,8})+)*"
    r"(-x(-[a-zA-Z\d]{1,8})+)?$"
)

NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan", "cs": "Czech",
    "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fil": "Filipino", "fr": "French",
    "ga": "Irish", "gl": "Galician", "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian", "is": "Icelandic", "it": "Italian",
    "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh", "km": "Khmer", "kn": "Kannada", "ko": "Korean",
    "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian", "ml": "Malayalam", "mr": "Marathi",
    "ms": "Malay", "my": "Burmese", "nb": "Norwegian Bokmål", "ne": "Nepali", "nl": "Dutch", "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "pa": "Punjabi", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian",
    "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese", "yue": "Cantonese", "zh": "Chinese", "zu": "Zulu",
}
REGIONAL = {
    "pt-BR": "Brazilian Portuguese", "pt-PT": "European Portuguese", "en-GB": "British English",
    "en-US": "American English", "es-MX": "Mexican Spanish", "es-ES": "European Spanish", "fr-CA": "Canadian French",
    "de-CH": "Swiss German", "de-AT": "Austrian German", "zh-CN": "Simplified Chinese", "zh-TW": "Traditional Chinese",
    "zh-Hans": "Simplified Chinese", "zh-Hant": "Traditional Chinese",
}
# What the language check's model (py3langid) names a language that BCP-47 names otherwise.
DETECTOR_ALIASES = {"nb": "no", "fil": "tl", "iw": "he", "in": "id", "ji": "yi", "cmn": "zh"}
# The languages py3langid 0.4 identifies (its model's labels); a turn in any other language is not checked.
DETECTABLE = frozenset(
    "ace af am an ar ary arz as az ba bcl be bg bn br bs ca crh cs cy da de dz el en eo es et eu ext fa fi fo fr "
    "fuv fy ga gcf gcr gd gl gom grc gu gug guw ha hbo he hi hr ht hu hy id ig is it ja jv ka kab kik kk km kn ko "
    "ku ky la lb lg lij ln lo lt ltg lv mg mk ml mn mr ms mt my ne nl nn no nso oc om or pa pcm pl ps pt qu ro ru "
    "rw sa sdh se si sk sl sn so sq sr st sv sw ta te tg th tk tl tr tt ug uk ur uz uzs vec vi vo wa wuu xh yo "
    "yue zh zu".split()
)


def normalize_tag(tag: str) -> str:
    """A well-formed BCP-47 tag in its canonical case (``pt-br`` -> ``pt-BR``, ``zh-hant`` -> ``zh-Hant``);
    anything else is a one-line ``ConfigError``."""
    text = tag.strip().replace("_", "-") if isinstance(tag, str) else ""
    found = _TAG.match(text)
    if not found:
        raise ConfigError(f"{tag!r} is not a BCP-47 language tag (e.g. de, pt-BR, ja, zh-Hant)")
    parts = text.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():  # a script
            out.append(part.title())
        elif len(part) == 2 and part.isalpha():  # a region
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def primary(tag: str) -> str:
    """The language subtag: what a language-identification model can tell apart."""
    return tag.split("-")[0].lower()


def detector_code(tag: str) -> str:
    code = primary(tag)
    return DETECTOR_ALIASES.get(code, code)


def detectable(tag: str) -> bool:
    return detector_code(tag) in DETECTABLE


def language_name(tag: str) -> str:
    """``German (de)``, ``Brazilian Portuguese (pt-BR)``; an unlisted tag is named by itself."""
    name = REGIONAL.get(tag) or NAMES.get(primary(tag))
    return f"{name} ({tag})" if name else f"the language with BCP-47 tag {tag}"


def _named(tag: str | None) -> str | None:
    return language_name(tag) if tag else None


# What each role is told. Each starts with the separator its template expects and is empty without
# a language, so a run without one sends exactly the prompts it always did.
def user_instruction(tag: str | None) -> str:
    name = _named(tag)
    return f"\nWrite every message in {name}, as a native speaker would." if name else ""


def agent_instruction(tag: str | None) -> str:
    name = _named(tag)
    return f" Always answer the user in {name}, whatever language the tools return." if name else ""


def task_instruction(tag: str | None) -> str:
    name = _named(tag)
    return (f"\nThe user speaks {name}: write the goal, the subtasks and the rubric in {name}; "
            "tool names stay as they are.") if name else ""
