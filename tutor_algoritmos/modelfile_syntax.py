"""Modelfile syntax as Ollama's parser reads it (ollama/ollama parser/parser.go, ParseFile + unquote).

Facts from that parser, which decide what can be written:
- a value runs to the end of its line, or past it while it is an open `"` or `\"\"\"` quote;
  a quote closes at a line end whose trimmed text so far ends with the closing quote;
- there are no escapes: `\"\"\"` followed by blanks and a line break inside a triple-quoted value
  ends it early, so such a text cannot be written at all;
- characters that are not printable (Unicode categories C and Z, except the ASCII space), other
  than tabs and line breaks inside quotes, are dropped; blanks around a value are trimmed.

`quote_value` writes a text in the first form that reads back identically, or says why none does;
`parse_modelfile` reads a Modelfile back, so every Modelfile we write is checked by reading it.
"""

from __future__ import annotations

from tutor_algoritmos.errors import UserError

BLANKS = " \t"
LINE_BREAKS = "\r\n"
COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter",
            "message", "requires")
FORMS = {"bare": "{}", "quoted": '"{}"', "triple": '"""{}"""'}


def _unquote(text: str) -> tuple[str, bool]:
    if text.startswith('"""'):
        return (text[3:-3], True) if len(text) >= 6 and text.endswith('"""') else ("", False)
    if text.startswith('"'):
        return (text[1:-1], True) if len(text) >= 2 and text.endswith('"') else ("", False)
    return text, True


def _kept(char: str) -> bool:
    """Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    return char == " " or char.isprintable()


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(command, value) pairs in order; FROM is "model", PARAMETER x gives ("x", value)."""
    commands: list[tuple[str, str]] = []
    text = text.removeprefix("\ufeff")
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in BLANKS + LINE_BREAKS:
            i += 1
            continue
        if char == "#":
            while i < n and text[i] not in LINE_BREAKS:
                i += 1
            continue
        start = i
        while i < n and text[i].isascii() and text[i].isalpha():
            i += 1
        name = text[start:i].lower()
        if i >= n or text[i] not in BLANKS or name not in COMMANDS:
            raise UserError(f"Modelfile: {text[start:i + 1]!r} is not a command ({', '.join(COMMANDS)})")
        i += 1
        if name == "parameter":
            start = i
            while i < n and (text[i].isascii() and (text[i].isalnum() or text[i] == "_")):
                i += 1
            name = text[start:i]
            if i >= n or text[i] not in BLANKS:
                raise UserError(f"Modelfile: PARAMETER {name!r} has no value")
            i += 1
        value, i = _read_value(text, i)
        commands.append(("model" if name == "from" else name, value))
    return commands


def _read_value(text: str, i: int) -> tuple[str, int]:
    """The value starting at text[i] and the index after it."""
    buffer: list[str] = []
    while i < len(text):
        char = text[i]
        i += 1
        if char in BLANKS:
            buffer.append(char)
        elif char in LINE_BREAKS:
            value, closed = _unquote("".join(buffer).strip())
            if closed:
                return value, i
            buffer.append(char)
        elif _kept(char):
            buffer.append(char)
    value, closed = _unquote("".join(buffer).strip())
    if not closed:
        raise UserError("Modelfile: a quoted value is never closed")
    return value, i



def quote_value(text: str, what: str, forms: tuple[str, ...] = ("triple",)) -> str:
    """`text` in the first of `forms` that Ollama reads back as exactly `text`."""
    dropped = sorted({repr(c) for c in text if not _kept(c) and c not in BLANKS + LINE_BREAKS})
    if dropped:
        raise UserError(f"{what} contains {', '.join(dropped)}, which Ollama drops — remove them")
    for form in forms:
        written = FORMS[form].format(text)
        try:
            if parse_modelfile(f"SYSTEM {written}\n") == [("system", text)]:
                return written
        except UserError:
            continue
    if '"""' in text:
        raise UserError(f'{what} has """ at the end of a line, which ends a Modelfile value early (Ollama\'s '
                        "parser has no escapes) — put a character after it or write ''' instead")
    raise UserError(f"{what} {text!r} cannot be written in a Modelfile so that Ollama reads it back unchanged")
