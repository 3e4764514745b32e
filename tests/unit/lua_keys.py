"""Which keys each function of the Lua library reads and writes, read off its source (no Redis).

A small reader of the Lua the library is written in: it finds the top-level functions of each
file, follows the calls from a registered function into the helpers it calls (of its own file
and of 00_shared.lua), and notes every Redis command sent to a key, with the key named as
``KEYS[n]``, as a field of the key table (``K.ready``; the names and their positions are
``KEY_SUFFIXES`` of keys.py, which ``key_table`` follows: see test_keys.py), as a local alias
of one of those, or as a parameter of a helper that its callers fill with one of those.

A command **reads** a key when it is a read command, or when the code uses the reply of a write
command (``INCR``'s new value, ``ZPOPMIN``'s members, whether ``ZREM`` or ``HSETNX`` changed
anything); it **writes** a key when it changes it. ``PUBLISH`` goes to the result channel, a name
outside KEYS. A key used in any other way (an expression this reader cannot follow) is an error,
so that the check never passes by not seeing a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from errands.broker.redis.keys import KEY_SUFFIXES

__all__ = [
    "Effects",
    "LuaError",
    "declared_effects",
    "functions_of",
    "registered",
    "touched",
]

READ = frozenset({"read"})
WRITE = frozenset({"write"})

#: Redis commands by what they do to their first key.
_READS = (
    "GET",
    "HGET",
    "HMGET",
    "HEXISTS",
    "HGETALL",
    "HSCAN",
    "SISMEMBER",
    "SCARD",
    "ZCARD",
    "ZRANGE",
    "ZLEXCOUNT",
    "PTTL",
)
_WRITES = (
    "SET",
    "DEL",
    "HSET",
    "HSETNX",
    "HDEL",
    "HINCRBY",
    "INCR",
    "INCRBY",
    "SADD",
    "SREM",
    "PEXPIRE",
    "XADD",
)
COMMANDS: dict[str, frozenset[str]] = {
    **dict.fromkeys((*_READS, "ZSCORE"), READ),
    **dict.fromkeys((*_WRITES, "ZADD", "ZREM", "ZPOPMIN"), WRITE),
}
#: Words that go on with an expression; any other word starts the next statement.
_BINARY = frozenset({"and", "or"})
#: Commands that name no key.
KEYLESS = frozenset({"TIME"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--\[(?P<ceq>=*)\[.*?\](?P=ceq)\]|--[^\n]*)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\[(?P<seq>=*)\[.*?\](?P=seq)\])
  | (?P<number>0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^#<>=(){}\[\];:,.])
    """,
    re.VERBOSE | re.DOTALL,
)
_OPENERS = frozenset({"function", "if", "do", "repeat"})
_CLOSERS = frozenset({"end", "until"})
#: After these, an expression starts: a call there has its reply used.
_EXPRESSION_BEFORE = frozenset(
    {"=", "(", ",", "{", "[", "return", "if", "elseif", "while", "until", "not", "and", "or"}
    | {"..", "==", "~=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "^", "#", "in"}
)


class LuaError(Exception):
    """The source uses a key in a way this reader cannot follow, or is not shaped as expected."""


@dataclass(frozen=True, eq=False)  # compared by identity: one token, one place
class Token:
    kind: str  # name, string, number, op
    text: str
    line: int


@dataclass
class Function:
    name: str
    file: str
    params: list[str]
    body: list[Token]


@dataclass
class Effects:
    """What a function does to keys: by suffix, by its own parameters, and to the channel."""

    keys: dict[str, set[str]] = field(default_factory=dict)
    params: dict[int, set[str]] = field(default_factory=dict)
    publishes: bool = False

    def merge_keys(self, suffix: str, modes: set[str] | frozenset[str]) -> None:
        self.keys.setdefault(suffix, set()).update(modes)


def tokens_of(source: str) -> list[Token]:
    """The tokens of a Lua source, without spaces and comments."""
    out: list[Token] = []
    pos, line = 0, 1
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise LuaError(f"line {line}: cannot read {source[pos : pos + 20]!r}")
        kind = match.lastgroup or ""  # the outer group: it closes last
        if kind not in {"space", "comment"}:
            out.append(Token(kind, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return out


def _block_end(tokens: list[Token], start: int) -> int:
    """The index of the `end` that closes the block opened just before `start`."""
    depth = 1
    for i in range(start, len(tokens)):
        text = tokens[i].text if tokens[i].kind == "name" else ""
        if text in _OPENERS:
            depth += 1
        elif text in _CLOSERS:
            depth -= 1
            if depth == 0:
                return i
    raise LuaError(f"line {tokens[start].line}: a block is never closed")


def functions_of(source: str, file: str) -> tuple[dict[str, Function], list[Token]]:
    """The top-level `local function`s of a file by name, and the tokens outside them."""
    tokens = tokens_of(source)
    functions: dict[str, Function] = {}
    outside: list[Token] = []
    i = 0
    while i < len(tokens):
        if [t.text for t in tokens[i : i + 2]] == ["local", "function"]:
            name = tokens[i + 2].text
            close = next(j for j in range(i + 3, len(tokens)) if tokens[j].text == ")")
            params = [t.text for t in tokens[i + 4 : close] if t.kind == "name"]
            end = _block_end(tokens, close + 1)
            functions[name] = Function(name, file, params, tokens[close + 1 : end])
            i = end + 1
        else:
            outside.append(tokens[i])
            i += 1
    return functions, outside


_REGISTER = re.compile(
    r"register_function\s*(?:\(\s*'errands_v1_(\w+)'\s*,\s*(\w+)\s*\)"
    r"|\{\s*function_name\s*=\s*'errands_v1_(\w+)'\s*,\s*callback\s*=\s*(\w+))"
)


def registered(source: str) -> dict[str, str]:
    """The functions a file registers: operation (``ack``) -> its callback's name."""
    found: dict[str, str] = {}
    for match in _REGISTER.finditer(source):
        operation = match.group(1) or match.group(3)
        found[operation] = match.group(2) or match.group(4)
    return found


def _arguments(tokens: list[Token], open_paren: int) -> tuple[list[list[Token]], int]:
    """The arguments of the call whose `(` is at `open_paren`, and the index of its `)`."""
    args: list[list[Token]] = [[]]
    depth = 0
    for i in range(open_paren + 1, len(tokens)):
        text = tokens[i].text if tokens[i].kind == "op" else ""
        if text in {"(", "{", "["}:
            depth += 1
        elif text in {")", "}", "]"}:
            if depth == 0:
                return ([] if args == [[]] else args), i
            depth -= 1
        elif text == "," and depth == 0:
            args.append([])
            continue
        args[-1].append(tokens[i])
    raise LuaError(f"line {tokens[open_paren].line}: a call is never closed")


def _key_ref(tokens: list[Token], i: int) -> tuple[str, int] | None:
    """The key suffix referred to at `i` (``KEYS[n]`` or ``K.name``) and its token count."""
    texts = [t.text for t in tokens[i : i + 4]]
    if texts[:2] == ["KEYS", "["]:
        if len(texts) < 4 or texts[3] != "]" or not texts[2].isdigit():
            raise LuaError(f"line {tokens[i].line}: KEYS indexed by an expression")
        index = int(texts[2])
        if not 1 <= index <= len(KEY_SUFFIXES):
            raise LuaError(f"line {tokens[i].line}: KEYS[{index}] does not exist")
        return KEY_SUFFIXES[index - 1], 4
    if texts[:2] == ["K", "."] and len(texts) >= 3 and texts[2] in KEY_SUFFIXES:
        return texts[2], 3
    return None


@dataclass
class _Reader:
    """What one function's body does to keys, as it is read."""

    function: Function
    effects: Effects = field(default_factory=Effects)
    aliases: dict[str, str] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)  # indexes of the key references accounted for

    def target(self, expr: list[Token]) -> tuple[str, str | int]:
        """("key", suffix) or ("param", index) for a key expression, else LuaError."""
        body = self.function.body
        if len(expr) == 1 and expr[0].text in self.aliases:
            return "key", self.aliases[expr[0].text]
        if len(expr) == 1 and expr[0].text in self.function.params:
            return "param", self.function.params.index(expr[0].text)
        start = body.index(expr[0]) if expr else -1
        ref = _key_ref(body, start) if expr else None
        if ref is not None and ref[1] == len(expr):
            self.seen.add(start)
            return "key", ref[0]
        where = f"line {expr[0].line}" if expr else self.function.name
        text = " ".join(t.text for t in expr)
        raise LuaError(f"{where}: cannot tell which key {text!r} is")

    def add(self, expr: list[Token], modes: set[str] | frozenset[str]) -> None:
        kind, value = self.target(expr)
        if kind == "key":
            self.effects.merge_keys(str(value), modes)
        else:
            self.effects.params.setdefault(int(value), set()).update(modes)


def _reply_used(tokens: list[Token], i: int) -> bool:
    return i > 0 and tokens[i - 1].text in _EXPRESSION_BEFORE


def _redis_call(reader: _Reader, i: int) -> None:
    body = reader.function.body
    args, _ = _arguments(body, i + 3)
    command = args[0][0].text.strip("'\"").upper() if args and args[0] else ""
    if command in KEYLESS:
        return
    if command == "PUBLISH":
        reader.effects.publishes = True
        return
    if command not in COMMANDS or len(args) < 2:
        raise LuaError(
            f"{reader.function.file} line {body[i].line}: {command or 'a command'} is not in "
            "COMMANDS (what it does to its key) or names no key"
        )
    modes = set(COMMANDS[command])
    if _reply_used(body, i):
        modes.add("read")
    reader.add(args[1], modes)


def _helper_call(reader: _Reader, i: int, callee: Effects) -> None:
    body = reader.function.body
    args, _ = _arguments(body, i + 1)
    for suffix, modes in callee.keys.items():
        reader.effects.merge_keys(suffix, modes)
    for index, modes in callee.params.items():
        if index >= len(args):
            raise LuaError(f"line {body[i].line}: {body[i].text} lacks argument {index + 1}")
        reader.add(args[index], modes)
    reader.effects.publishes |= callee.publishes


def _alias(reader: _Reader, i: int) -> None:
    """``local name = KEYS[n]`` (or ``= K.x``) as a whole statement: a key by another name."""
    body = reader.function.body
    ref = _key_ref(body, i + 3)
    after = i + 3 + ref[1] if ref else 0
    ends = after >= len(body) or (body[after].kind == "name" and body[after].text not in _BINARY)
    if ref and ends:
        reader.aliases[body[i + 1].text] = ref[0]
        reader.seen.add(i + 3)


_READING = Effects()  # in the memo while a function is being read


def touched(name: str, functions: dict[str, Function], memo: dict[str, Effects]) -> Effects:
    """What the function `name` does to keys, with every helper it calls."""
    if memo.get(name) is _READING:
        raise LuaError(f"{name} calls itself, through a helper or directly")
    if name in memo:
        return memo[name]
    if name == "key_table":  # names the keys, touches none (its order: test_keys.py)
        return Effects()
    memo[name] = _READING
    reader = _Reader(functions[name])
    body = reader.function.body
    for i, token in enumerate(body):
        texts = [t.text for t in body[i : i + 4]]
        if texts[:2] == ["local", "function"]:
            raise LuaError(f"line {token.line}: a function inside a function")
        if texts[:1] == ["local"] and len(texts) > 2 and texts[2] == "=":
            _alias(reader, i)
        if texts[:3] in (["redis", ".", "call"], ["redis", ".", "pcall"]):
            _redis_call(reader, i)
        elif token.text in functions and texts[1:2] == ["("] and body[i - 1].text != ".":
            _helper_call(reader, i, touched(token.text, functions, memo))
    _check_all_seen(reader)
    memo[name] = reader.effects
    return reader.effects


def _check_all_seen(reader: _Reader) -> None:
    body = reader.function.body
    for i in range(len(body)):
        if _key_ref(body, i) is not None and i not in reader.seen:
            raise LuaError(
                f"{reader.function.file} line {body[i].line}: a key used in a way this reader "
                "cannot follow (only as a Redis command's key, a helper's argument or a local "
                "alias)"
            )


_KEY_LINE = re.compile(r"^--\s+KEYS\[(\d+)\] (\w+) \((read|write|read, write)\)$")
_SECTION = re.compile(r"^-- errands_v1_(\w+)\b")


def declared_effects(source: str) -> dict[str, Effects]:
    """What the header of a file declares, by the operation whose section declares it."""
    declared: dict[str, Effects] = {}
    section: str | None = None
    for line in source.splitlines():
        if not line.startswith("--"):
            break
        if match := _SECTION.match(line):
            section = match.group(1)
        key = _KEY_LINE.match(line)
        if key is None and "(published to)" not in line:
            continue
        if section is None:
            raise LuaError(f"{line!r} comes before any function's section")
        effects = declared.setdefault(section, Effects())
        if key is None:
            effects.publishes = True
            continue
        index, suffix = int(key.group(1)), key.group(2)
        if KEY_SUFFIXES[index - 1 : index] != (suffix,):
            raise LuaError(f"{line!r}: KEYS[{index}] is not {suffix} (KEY_SUFFIXES)")
        if suffix in effects.keys:
            raise LuaError(f"{line!r}: {suffix} is named twice in errands_v1_{section}")
        effects.merge_keys(suffix, set(key.group(3).split(", ")))
    return declared
