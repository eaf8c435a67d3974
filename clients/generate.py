"""Generate the clients' typed operations from the app's own OpenAPI document.

`make client-ops` (or `python clients/generate.py`) rewrites
`clients/python/src/carpool_client/operations.py` (TypedDicts and one method per
operationId) and the generated parts of `clients/browser/carpool.js` (the operations
table) and `clients/browser/carpool.d.ts` (interfaces and method signatures).
`python clients/generate.py --check` fails when a checked-in file differs
(tests/clients/test_generated.py runs it).
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON_OPERATIONS = ROOT / "clients/python/src/carpool_client/operations.py"
BROWSER_MODULE = ROOT / "clients/browser/carpool.js"
BROWSER_TYPES = ROOT / "clients/browser/carpool.d.ts"
# Operations about the API itself (its documents, probes, batch and socket), not its data.
_MACHINERY_TAGS = frozenset({"batch", "websocket", "operations", "documentation"})
BEGIN, END = "// BEGIN GENERATED", "// END GENERATED"


def api_document() -> dict[str, Any]:
    """The OpenAPI document of the app as `asgi.py` builds it (in-process, no server)."""
    sys.path.insert(0, str(ROOT))
    from container import Container

    from carpool.app import create_app
    from carpool.web.openapi.document import build_document

    return build_document(create_app(Container(), name="carpool_generate"))


def operations_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The data operations: method, path, operationId, parameters, body and answer models."""
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "head" or not isinstance(op, dict) or "operationId" not in op:
                continue
            if _MACHINERY_TAGS & set(op.get("tags", ())):
                continue
            params = [p for p in op.get("parameters", []) if "name" in p]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            found.append(
                {
                    "id": op["operationId"],
                    "summary": op.get("summary", ""),
                    "method": method.upper(),
                    "path": path,
                    "path_params": [p for p in params if p["in"] == "path"],
                    "query_params": [p for p in params if p["in"] == "query"],
                    "body": body.get("schema"),
                    "answer": _answer_schema(op),
                }
            )
    return sorted(found, key=lambda op: op["id"])


def _answer_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    for status in sorted(op["responses"]):
        if status.startswith("2"):
            content = op["responses"][status].get("content", {})
            return content.get("application/json", {}).get("schema")  # type: ignore[no-any-return]
    return None


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def models_of(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Every schema the operations use, transitively (and the problem answer)."""
    schemas = doc["components"]["schemas"]
    wanted = {"Problem"} | _refs([[op["body"], op["answer"]] for op in ops])
    todo = list(wanted)
    while todo:
        for name in _refs(schemas[todo.pop()]) - wanted:
            wanted.add(name)
            todo.append(name)
    return {name: schemas[name] for name in sorted(wanted)}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


Aliases = Mapping[tuple[Any, ...], str]
"""Named enums: the values of an enum used more than once, and the name it is emitted as."""
NO_ALIASES: Aliases = {}


def _enums(schema: Any) -> Iterator[tuple[Any, ...]]:
    """The value lists of every enum in `schema` (under anyOf, oneOf, items too)."""
    if isinstance(schema, dict):
        if isinstance(schema.get("enum"), list):
            yield tuple(schema["enum"])
        for value in schema.values():
            yield from _enums(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _enums(value)


def enum_aliases(models: Mapping[str, Any]) -> dict[tuple[Any, ...], str]:
    """Each enum found in more than one model property, named from the first property that
    has it (`country` -> `Country`), never taking a model's name: emitted once, reused."""
    seen: Counter[tuple[Any, ...]] = Counter()
    first: dict[tuple[Any, ...], str] = {}
    for schema in models.values():
        for key, value in schema.get("properties", {}).items():
            for values in _enums(value):
                seen[values] += 1
                first.setdefault(values, key)
    taken = set(models)
    aliases: dict[tuple[Any, ...], str] = {}
    for values, uses in seen.items():
        if uses < 2:
            continue
        base = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", first[values]))
        name, n = base, 1
        while name in taken or not name.isidentifier() or keyword.iskeyword(name):
            n += 1
            name = f"{base}{n}"
        taken.add(name)
        aliases[values] = name
    return aliases


# -- Python -------------------------------------------------------------------------------


def py_type(schema: dict[str, Any] | None, aliases: Aliases = NO_ALIASES) -> str:
    if not schema:
        return "Any"
    if "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[1])
    if "anyOf" in schema or "oneOf" in schema:
        parts = [py_type(part, aliases) for part in schema.get("anyOf", schema.get("oneOf"))]
        return " | ".join(dict.fromkeys(parts))
    if "const" in schema:
        return f"Literal[{schema['const']!r}]"
    if "enum" in schema:
        if tuple(schema["enum"]) in aliases:
            return aliases[tuple(schema["enum"])]
        return "Literal[" + ", ".join(repr(value) for value in schema["enum"]) + "]"
    kind = schema.get("type")
    if kind == "array":
        return f"list[{py_type(schema.get('items'), aliases)}]"
    simple = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
    if kind == "null":
        return "None"
    if kind in simple:
        return simple[kind]
    return "dict[str, Any]"


def py_model(name: str, schema: dict[str, Any], aliases: Aliases = NO_ALIASES) -> str:
    doc = (schema.get("description") or name).splitlines()[0]
    if schema.get("type") != "object" or "properties" not in schema:
        bare = {k: v for k, v in schema.items() if k != "description"}
        return f"{name} = {py_type(bare, aliases)}\n"
    required = set(schema.get("required", ()))
    fields = {
        key: py_type(value, aliases)
        if key in required
        else f"NotRequired[{py_type(value, aliases)}]"
        for key, value in schema["properties"].items()
    }
    if all(key.isidentifier() and not keyword.iskeyword(key) for key in fields):
        lines = [f"class {name}(TypedDict):", f'    """{doc}"""', ""]
        lines += [f"    {key}: {kind}" for key, kind in fields.items()]
        return "\n".join(lines) + "\n"
    items = ", ".join(f"{key!r}: {kind}" for key, kind in fields.items())
    return f"{name} = TypedDict({name!r}, {{{items}}})\n"


def py_method(op: dict[str, Any], aliases: Aliases = NO_ALIASES) -> str:
    args = [f"{p['name']}: {py_type(p.get('schema'), aliases)}" for p in op["path_params"]]
    if op["body"] is not None:
        args.append(f"body: {py_type(op['body'], aliases)}")
    args += [
        f"{p['name']}: {py_type(p.get('schema'), aliases)} | None = None"
        for p in op["query_params"]
    ]
    args.append("headers: Mapping[str, str] | None = None")
    answer = py_type(op["answer"], aliases) if op["answer"] else "None"
    path = re.sub(r"\{(\w+)\}", r"{_segment(\1)}", op["path"])
    call = [f'"{op["method"]}"', f'f"{path}"' if "{" in path else f'"{path}"']
    if op["query_params"]:
        pairs = ", ".join(f'"{p["name"]}": {p["name"]}' for p in op["query_params"])
        call.append(f"params={{{pairs}}}")
    if op["body"] is not None:
        call.append("json=body")
    call.append("headers=headers")
    lines = [
        f"    async def {snake(op['id'])}(self, *, {', '.join(args)}) -> {answer}:",
        f'        """{op["summary"]} (`{op["method"]} {op["path"]}`, {op["id"]})."""',
        f"        response = await self.request({', '.join(call)})",
    ]
    lines.append(
        f"        return cast({answer}, response.json())"
        if op["answer"]
        else "        del response"
    )
    return "\n".join(lines) + "\n"


PY_HEADER = '''\
"""carpool's operations, typed: generated by `make client-ops` from the API description.

Do not edit: regenerate. Each method is a plain call (`Client.request`), so a call made
with it is batched, sent over the socket or retried like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import {typing}
from urllib.parse import quote

from carpool_client._calls import NO_BODY
from carpool_client._response import Response

__all__ = [{names}]


def _segment(value: object) -> str:
    return quote(str(value), safe="")


'''

PY_BASE = '''

class Operations:
    """One method per operationId; a subclass provides `request`."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = NO_BODY,
        headers: Mapping[str, str] | None = None,
        raise_for_status: bool | None = None,
    ) -> Response:
        raise NotImplementedError

'''


def python_module(doc: dict[str, Any]) -> str:
    ops = operations_of(doc)
    models = models_of(doc, ops)
    aliases = enum_aliases(models)
    names = ", ".join(f'"{name}"' for name in sorted([*models, *aliases.values(), "Operations"]))
    named = [py_model(name, {"enum": list(values)}) for values, name in aliases.items()]
    named += [py_model(name, schema, aliases) for name, schema in models.items()]
    body = "\n\n".join(named)
    body += PY_BASE + "\n".join(py_method(op, aliases) for op in ops)
    used = [name for name in ("Literal", "NotRequired") if f"{name}[" in body]
    typing = ", ".join(["Any", *used, "TypedDict", "cast"])
    return _formatted(PY_HEADER.format(names=names, typing=typing) + body)


def _formatted(text: str) -> str:
    """`text` as `ruff format` (the project's style) writes it."""
    ruff = Path(sys.executable).with_name("ruff")
    command = [str(ruff), "format", "--stdin-filename", str(PYTHON_OPERATIONS), "-"]
    done = subprocess.run(command, input=text, capture_output=True, text=True, check=True)
    return done.stdout


# -- TypeScript and the module's table ----------------------------------------------------


def ts_type(schema: dict[str, Any] | None, aliases: Aliases = NO_ALIASES) -> str:
    if not schema:
        return "unknown"
    if "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[1])
    if "anyOf" in schema or "oneOf" in schema:
        parts = [ts_type(part, aliases) for part in schema.get("anyOf", schema.get("oneOf"))]
        return " | ".join(dict.fromkeys(parts))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        if tuple(schema["enum"]) in aliases:
            return aliases[tuple(schema["enum"])]
        return " | ".join(json.dumps(value) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        inner = ts_type(schema.get("items"), aliases)
        return f"Array<{inner}>"
    simple = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}
    if kind == "null":
        return "null"
    return simple.get(kind, "Record<string, unknown>") if isinstance(kind, str) else "unknown"


def ts_model(name: str, schema: dict[str, Any], aliases: Aliases = NO_ALIASES) -> str:
    doc = (schema.get("description") or name).splitlines()[0]
    if schema.get("type") != "object" or "properties" not in schema:
        return f"/** {doc} */\nexport type {name} = {ts_type(schema, aliases)};\n"
    required = set(schema.get("required", ()))
    lines = [f"/** {doc} */", f"export interface {name} {{"]
    for key, value in schema["properties"].items():
        optional = "" if key in required else "?"
        lines.append(
            f"  {json.dumps(key) if not key.isidentifier() else key}{optional}: "
            f"{ts_type(value, aliases)};"
        )
    return "\n".join(lines) + "\n}\n"


def ts_method(op: dict[str, Any], aliases: Aliases = NO_ALIASES) -> str:
    params = [f"{p['name']}: {ts_type(p.get('schema'), aliases)}" for p in op["path_params"]]
    params += [f"{p['name']}?: {ts_type(p.get('schema'), aliases)}" for p in op["query_params"]]
    optional = "" if op["path_params"] else "?"
    args = [f"params{optional}: {{ {'; '.join(params)} }}"] if params else []
    if op["body"] is not None:
        args.append(f"body: {ts_type(op['body'], aliases)}")
    args.append("options?: CallOptions")
    answer = ts_type(op["answer"], aliases) if op["answer"] else "null"
    return (
        f"  /** {op['summary']} (`{op['method']} {op['path']}`). */\n"
        f"  {op['id']}({', '.join(args)}): Promise<{answer}>;\n"
    )


def ts_generated(doc: dict[str, Any]) -> str:
    ops = operations_of(doc)
    models = models_of(doc, ops)
    aliases = enum_aliases(models)
    named = [ts_model(name, {"enum": list(values)}) for values, name in aliases.items()]
    named += [ts_model(name, schema, aliases) for name, schema in models.items()]
    text = "\n".join(named)
    text += "\n/** One method per operationId of the API description. */\n"
    text += (
        "export interface Operations {\n" + "".join(ts_method(op, aliases) for op in ops) + "}\n"
    )
    return text


def js_table(doc: dict[str, Any]) -> str:
    rows = []
    for op in operations_of(doc):
        query = [p["name"] for p in op["query_params"]]
        row = [op["method"], op["path"], query, op["body"] is not None]
        rows.append(f"  {op['id']}: {json.dumps(row)},")
    return "export const OPERATIONS = {\n" + "\n".join(rows) + "\n};\n"


def spliced(path: Path, generated: str) -> str:
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END)
    head = text[: start + len(BEGIN)]
    head += " by `make client-ops` from the API description: do not edit.\n"
    return head + generated + text[end:]


def outputs(doc: dict[str, Any]) -> dict[Path, str]:
    return {
        PYTHON_OPERATIONS: python_module(doc),
        BROWSER_MODULE: spliced(BROWSER_MODULE, js_table(doc)),
        BROWSER_TYPES: spliced(BROWSER_TYPES, ts_generated(doc)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file would change")
    args = parser.parse_args()
    stale = []
    for path, text in outputs(api_document()).items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"out of date (run `make client-ops`): {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
