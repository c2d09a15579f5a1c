"""What the offline demo provider answers: deterministic text whose form differs by model.

The demo knows no facts. It reads only the *form* a prompt asks for: JSON (an example
object in the prompt gives the shape), an answer "in one word", or a request it should
refuse, and each model honours these in its own documented way (:data:`DEMO_TRAITS`, the
table in the README). So checks of form (JSON, JSON schema, length, refusal wording)
pass or fail by model with no API key. An answer never names its model, so a blind vote
on demo answers stays blind.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Literal

from playground.providers.base import GenerationRequest

Verbosity = Literal["brief", "medium", "long"]
JsonStyle = Literal["bare", "fenced", "chatty", "loose"]

REFUSE_CANT = "I can't help with that request."
REFUSE_SORRY = "I'm sorry, but I cannot help with that."
REFUSE_WONT = "I won't assist with that."
BANNER = "*Demo mode: simulated answer; no API call was made.*"
UNSAFE_PHRASES = (
    "password",
    "home address",
    "credit card number",
    "hack into",
    "pick the lock",
    "someone else's",
    "another customer's",
)
"""A prompt containing one of these asks for something a careful model refuses."""

_SENTENCES = {"brief": 1, "medium": 2, "long": 6}
_POINTS = {"brief": 2, "medium": 4, "long": 7}


@dataclass(frozen=True)
class DemoTraits:
    """How the demo simulates one model's manners.

    ``verbosity``: how long its prose and JSON text fields are (``long`` ones run past
    300 characters). ``one_word``: whether it honours "answer in one word".
    ``json_style``: ``bare`` valid JSON, ``fenced`` valid JSON in a ```json fence,
    ``chatty`` a sentence before the JSON (not valid JSON), ``loose`` valid JSON with
    booleans and numbers written as strings (fails a schema). ``refusal``: its wording
    when asked for something unsafe, ``None`` when it complies.
    """

    verbosity: Verbosity
    one_word: bool
    json_style: JsonStyle
    refusal: str | None


DEMO_TRAITS: dict[str, DemoTraits] = {
    "gpt-5-nano": DemoTraits("brief", True, "bare", REFUSE_CANT),
    "claude-haiku-4.5": DemoTraits("brief", True, "fenced", REFUSE_SORRY),
    "gemini-2.5-flash": DemoTraits("medium", False, "chatty", REFUSE_CANT),
    "deepseek-v3": DemoTraits("medium", True, "bare", None),
    "grok-4-fast": DemoTraits("brief", False, "loose", REFUSE_WONT),
    "gpt-5": DemoTraits("medium", True, "bare", REFUSE_CANT),
    "deepseek-r1": DemoTraits("long", False, "chatty", REFUSE_SORRY),
    "gpt-5.2": DemoTraits("medium", True, "fenced", REFUSE_CANT),
    "claude-sonnet-4.5": DemoTraits("medium", True, "fenced", REFUSE_SORRY),
    "gemini-3-pro": DemoTraits("long", True, "bare", REFUSE_CANT),
    "claude-opus-4.5": DemoTraits("long", True, "fenced", REFUSE_CANT),
    "gpt-5.2-pro": DemoTraits("long", True, "bare", REFUSE_CANT),
}
DEFAULT_TRAITS = DemoTraits("medium", True, "bare", REFUSE_CANT)
"""A model added to the catalog later behaves like this."""

_OPENINGS = (
    "Here is a structured take on it.",
    "Short answer first, then the details.",
    "Let me break this down step by step.",
    "There are a few angles worth considering.",
)
_POINT_TEXTS = (
    "State the goal in one sentence before anything else.",
    "List the constraints explicitly: budget, latency, and quality bar.",
    "Prefer the simplest option that meets every constraint.",
    "Measure before and after, on the same inputs, in one run.",
    "Write down what would change your mind.",
    "Check edge cases: empty input, very long input, mixed languages.",
    "Keep an example of a good answer to compare against.",
    "Cheaper models are often good enough for extraction and routing.",
    "Bigger models pay off on multi-step reasoning and long documents.",
    "Ask for a specific output format to make answers comparable.",
)
_CLOSINGS = (
    "In short: define success, then compare models against it.",
    "That should be a solid starting point.",
    "Happy to go deeper on any of these points.",
)
_REPLY_SENTENCES = (
    "Thanks for the details; we are looking into it now.",
    "A specialist will follow up within one business day.",
    "You can follow the status from your account page.",
    "We have noted everything you described.",
    "If anything changes in the meantime, just reply to this message.",
    "Nothing else is needed from you for now.",
    "We are sorry for the trouble this has caused.",
)
_JSON = re.compile(r"\bjson\b", re.IGNORECASE)
_ONE_WORD = re.compile(r"\b(one|single|1)[ -]word\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'-]*")


def traits_of(slug: str) -> DemoTraits:
    """The demo manners of model ``slug`` (:data:`DEFAULT_TRAITS` for one not listed)."""
    return DEMO_TRAITS.get(slug, DEFAULT_TRAITS)


def demo_answer(request: GenerationRequest) -> str:
    """The simulated answer for ``request``: same model and inputs, same text.

    The text depends on the model only through its :class:`DemoTraits` and the seed; it
    never contains the model's name or slug.
    """
    traits = traits_of(request.model)
    rng = random.Random(hashlib.sha256(request.request_hash("demo").encode()).digest())
    question = request.messages[-1].content if request.messages else ""
    asked = f"{request.system_prompt}\n{question}"
    refusal = traits.refusal if _unsafe(question) else None
    if _JSON.search(asked):
        return _json_answer(asked, traits, refusal, rng)
    if refusal is not None:
        return refusal
    if _ONE_WORD.search(asked):
        word = _key_word(question)
        if traits.one_word:
            return word
        return f"The short answer is {word}, though it depends on what you need it for."
    return _prose_answer(question, traits, rng)


def _unsafe(text: str) -> bool:
    folded = text.casefold().replace("’", "'")
    return any(phrase in folded for phrase in UNSAFE_PHRASES)


def _key_word(question: str) -> str:
    """The word a one-word answer gives: the question's last capitalised word, else its longest.

    The sentence asking for one word is not part of the question; a sentence's first word
    is capitalised anyway, so it does not count as capitalised.
    """
    sentences = re.split(r"(?<=[.?!])\s+", question.strip())
    asked = [s for s in sentences if not _ONE_WORD.search(s)] or sentences
    words: list[list[str]] = [_WORD.findall(sentence) for sentence in asked]
    capitalised = [w for ws in words for w in ws[1:] if w[0].isupper()]
    if capitalised:
        return capitalised[-1]
    return max((w for ws in words for w in ws), key=len, default="Yes")


def _reply(traits: DemoTraits, rng: random.Random) -> str:
    count = _SENTENCES[traits.verbosity]
    return " ".join(rng.sample(_REPLY_SENTENCES, k=min(count, len(_REPLY_SENTENCES))))


def _example_object(text: str) -> dict[str, Any] | None:
    """The first JSON object written in ``text`` (the shape the prompt asks for), if any."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _json_answer(asked: str, traits: DemoTraits, refusal: str | None, rng: random.Random) -> str:
    """The prompt's example object filled in (long strings get the reply), in the model's style."""
    text = refusal or _reply(traits, rng)
    example = _example_object(asked) or {"answer": "text"}
    loose = traits.json_style == "loose"
    filled: dict[str, Any] = {}
    for key, value in example.items():
        if isinstance(value, bool):
            flag = rng.random() < 0.5
            filled[key] = ("yes" if flag else "no") if loose else flag
        elif isinstance(value, int | float):
            number = rng.randint(1, 5)
            filled[key] = str(number) if loose else number
        elif isinstance(value, str) and " " not in value.strip():
            filled[key] = value  # a one-word example value is taken as the expected kind
        elif isinstance(value, str):
            filled[key] = text
        else:
            filled[key] = value
    if traits.json_style == "fenced":
        return f"```json\n{json.dumps(filled, indent=2, ensure_ascii=False)}\n```"
    body = json.dumps(filled, ensure_ascii=False)
    return f"Here is the JSON you asked for:\n{body}" if traits.json_style == "chatty" else body


def _prose_answer(question: str, traits: DemoTraits, rng: random.Random) -> str:
    shown = textwrap.shorten(question.strip().replace("\n", " "), width=90, placeholder="…")
    n_points = _POINTS[traits.verbosity] + rng.randrange(2)
    points = rng.sample(_POINT_TEXTS, k=min(n_points, len(_POINT_TEXTS)))
    body = "\n".join(f"{i}. {p}" for i, p in enumerate(points, start=1))
    return (
        f"{BANNER}\n\nYou asked: “{shown}”\n\n{rng.choice(_OPENINGS)}\n\n{body}\n\n"
        f"{rng.choice(_CLOSINGS)}"
    )


_LENGTH = {"brief": "short", "medium": "medium", "long": "long (> 300 chars)"}
_JSON_STYLES = {
    "bare": "valid JSON",
    "fenced": "valid, in a json code fence",
    "chatty": "a sentence, then JSON (invalid)",
    "loose": "valid, but true/1 as strings",
}


def demo_traits_table() -> str:
    """:data:`DEMO_TRAITS` as the Markdown table the README shows (a test keeps them equal)."""
    lines = [
        "| model | length | answers in one word | JSON | asked for something unsafe |",
        "|---|---|---|---|---|",
    ]
    for slug, t in DEMO_TRAITS.items():
        refusal = "complies" if t.refusal is None else f"“{t.refusal}”"
        one_word = "yes" if t.one_word else "no, a sentence"
        lines.append(
            f"| `{slug}` | {_LENGTH[t.verbosity]} | {one_word} | "
            f"{_JSON_STYLES[t.json_style]} | {refusal} |"
        )
    return "\n".join(lines)
