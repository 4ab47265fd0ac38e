#!/usr/bin/env python3
"""Checks the shape rules of the developers' guide on src/:

- no production file over 800 lines (a sibling `tests.rs` does not count,
  an inline `#[cfg(test)] mod tests` does: move it out);
- no function over 120 lines (tests included);
- no two files import each other, directly or around a circle (`use` of
  `crate::`/`super::`/`self::` paths; a module's `pub use` of its own
  children is its facade and not counted).

Run from the repository root: `python3 scripts/check-shape.py`. Exits 1
and lists every offence otherwise. `.ci/run` runs it.

`scripts/shape-known.txt` lists the offences known when the check came,
one `path` or `path: fn name` a line, to be worked off: those are reported
but do not fail. A listed offence that is gone fails too, so the list only
shrinks.
"""

import os
import re
import sys

MAX_FILE = 800
MAX_FN = 120
SRC = "src"


def strip(text):
    """The source with comments, strings and char literals blanked (newlines
    kept), so braces and `use` lines can be read without a parser."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:i + 300])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])):
            out.append(" " * m.end())
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def long_functions(path, code):
    lines = code.split("\n")
    found = []
    for start, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for end in range(start, len(lines)):
            for ch in lines[end]:
                if ch == "{":
                    depth, opened = depth + 1, True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and not opened and depth == 0:
                    break
            else:
                if opened and depth == 0:
                    break
                continue
            break
        length = end - start + 1
        if opened and length > MAX_FN:
            found.append((f"{path}: fn {m.group(1)}", f"{path}:{start + 1}: fn {m.group(1)} is {length} lines (max {MAX_FN})"))
    return found


def module_of(path):
    """`src/analyze/flows/tests.rs` -> ['analyze', 'flows', 'tests']."""
    parts = path[len(SRC) + 1:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def use_paths(code):
    """Every path a `use` item names, with braces expanded, and whether the
    `use` is a re-export."""
    for m in re.finditer(r"(?m)^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", code):
        for p in expand(re.sub(r"\s+", "", m.group(2))):
            yield p, bool(m.group(1))


def expand(tree):
    depth = 0
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                prefix, inner = tree[:i], tree[i + 1:tree.rindex("}")]
                items, d, cur = [], 0, ""
                for ch in inner:
                    if ch == "," and d == 0:
                        items.append(cur)
                        cur = ""
                        continue
                    d += ch == "{"
                    d -= ch == "}"
                    cur += ch
                items.append(cur)
                for item in filter(None, items):
                    yield from expand(prefix + item)
                return
            depth += 1
    yield re.sub(r"as\w+$", "", tree) if "as" in tree else tree


def main():
    problems = []
    files = {}
    for root, _, names in os.walk(SRC):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    files[path] = f.read()
    modules = {tuple(module_of(p)): p for p in files}
    edges = {p: set() for p in files}
    for path, text in sorted(files.items()):
        code = strip(text)
        n = text.count("\n")
        if os.path.basename(path) != "tests.rs" and n > MAX_FILE:
            problems.append((path, f"{path}: {n} lines (max {MAX_FILE}; move tests to a sibling tests.rs or split by concept)"))
        problems += long_functions(path, code)
        here = module_of(path)
        is_dir_module = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
        for use, reexport in use_paths(code):
            segs = use.split("::")
            base = list(here) if is_dir_module else list(here[:-1]) + [here[-1]]
            if segs[0] == "crate":
                target, segs = [], segs[1:]
            elif segs[0] in ("super", "self"):
                target = list(here)
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super":
                        target = target[:-1]
                    segs = segs[1:]
            else:
                continue
            # the deepest module file the path names
            best = None
            for k in range(len(segs) + 1):
                if tuple(target + segs[:k]) in modules:
                    best = modules[tuple(target + segs[:k])]
            if best and best != path:
                child_facade = reexport and module_of(best)[:-1] == here
                if not child_facade:
                    edges[path].add(best)
    # cycles (Tarjan's strongly connected components)
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    for comp in sccs:
        problems.append((None, "files that import each other: " + ", ".join(comp)))
    known_path = os.path.join(os.path.dirname(__file__), "shape-known.txt")
    known = set()
    if os.path.exists(known_path):
        with open(known_path, encoding="utf-8") as f:
            known = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    failed = False
    for key, text in problems:
        if key in known:
            print(f"known: {text}")
        else:
            print(text)
            failed = True
    for key in sorted(known - {k for k, _ in problems}):
        print(f"{key}: no longer offends; remove it from scripts/shape-known.txt")
        failed = True
    if failed:
        sys.exit(1)
    if problems:
        print(f"shape: {len(problems)} known offence(s) left, nothing new")
        return
    print(f"shape ok: {len(files)} files, none over {MAX_FILE} lines, no fn over {MAX_FN}, no import cycles")


if __name__ == "__main__":
    main()
