#!/usr/bin/env python3
"""Report import cycles among the modules of Onramp's crates.

Usage:
    scripts/module-cycles.py [SRC_DIR ...]    # default: app/src and crates/*/src
    scripts/module-cycles.py --self-test      # proves it finds a planted cycle

Each `.rs` file under a crate's `src/` is a module (`store/accounts.rs` -> `store::accounts`,
`store/mod.rs` -> `store`, `lib.rs` -> the crate root); inline `mod name { … }` blocks are modules
too. A module refers to another when its code names it by a path of the same crate:
`use crate::x::y`, `crate::x::y::z(…)` anywhere, `super::…` and `self::…` resolved from where
they are written, and `use` groups (`use crate::{a::b, c}`). A path is attributed to the longest
prefix that is a module (`crate::store::Store` -> `store`). Comments and string literals are not
read, and neither are `#[cfg(test)]` modules (`mod tests { … }`): a test may reach anywhere.
Names the crate root re-exports from another crate (`pub use gitlab;`) are outside the crate.

Cycles are reported at every level: among the top-level modules of a crate (`api`, `auth`,
`store`, …), and among the direct submodules of each module (`store::accounts` ↔
`store::workspaces`, `pages::integrations` ↔ `pages::scope`). For each level, every strongly
connected component of more than one module is printed with the references that close it (one
`file:line` per edge). A parent naming its own children (or a child its parent) is not a cycle:
the parent is not one of the siblings.

Exit status: 0 when there is no cycle, 1 when there is at least one (listed), 2 on usage errors.
Standard library only.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import unittest
from dataclasses import dataclass, field
from pathlib import Path

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PUNCT2 = ("::", "->", "=>", "==", "!=", "<=", ">=", "&&", "||")


@dataclass
class Tok:
    text: str
    line: int


def tokenize(src: str) -> list[Tok]:
    """Identifiers, `::` and single punctuation characters, without comments and literals."""
    toks: list[Tok] = []
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += src[i] == "\n"
                    i += 1
        elif c == "r" and re.match(r'r#*"', src[i:]) or c == "b" and re.match(r'br#*"', src[i:]):
            m = re.match(r'b?r(#*)"', src[i:])
            close = '"' + m.group(1)
            j = src.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            line += src.count("\n", i, j)
            i = j
        elif c == '"' or c == "b" and src.startswith('b"', i):
            i += 1 if c == '"' else 2
            while i < n and src[i] != '"':
                if src[i] == "\\":
                    i += 1
                line += i < n and src[i] == "\n"
                i += 1
            i += 1
        elif c == "'" or c == "b" and src.startswith("b'", i):
            start = i + (1 if c == "'" else 2)
            if start < n and src[start] == "\\":  # an escaped char literal
                j = src.find("'", start + 2)
                i = n if j < 0 else j + 1
            elif start + 1 < n and src[start + 1] == "'":  # 'x'
                i = start + 2
            elif c == "'":  # a lifetime or label: skip the quote, the name follows
                i = start
            else:
                i = start + 1
        elif c.isalpha() or c == "_":
            m = IDENT.match(src, i)
            toks.append(Tok(m.group(0), line))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"[0-9][0-9A-Za-z_.]*").match(src, i)
            i = m.end()
        else:
            two = src[i : i + 2]
            if two in PUNCT2:
                toks.append(Tok(two, line))
                i += 2
            else:
                toks.append(Tok(c, line))
                i += 1
    return toks


def matching(toks: list[Tok], i: int, open_: str, close: str, step: int = 1) -> int:
    """Index of the bracket matching the one at `i` (searching forward or backward)."""
    depth = 0
    while 0 <= i < len(toks):
        t = toks[i].text
        if t == open_:
            depth += 1
        elif t == close:
            depth -= 1
            if depth == 0:
                return i
        i += step
    return len(toks) - 1 if step > 0 else 0


def is_test_only(toks: list[Tok], i: int) -> bool:
    """Whether the item starting before token `i` (`mod`) carries `#[cfg(test)]` (or cfg(all(test…)))."""
    j = i - 1
    # visibility: pub, pub(crate), pub(super), pub(in path)
    if j >= 0 and toks[j].text == ")":
        k = matching(toks, j, ")", "(", step=-1)
        if k > 0 and toks[k - 1].text == "pub":
            j = k - 2
    elif j >= 0 and toks[j].text == "pub":
        j -= 1
    while j >= 1 and toks[j].text == "]":
        k = matching(toks, j, "]", "[", step=-1)
        if k < 1 or toks[k - 1].text != "#":
            break
        attr = [t.text for t in toks[k + 1 : j]]
        if attr[:1] == ["cfg"] and "test" in attr and "not" not in attr:
            return True
        j = k - 2
    return False


@dataclass
class Ref:
    target: list[str]  # absolute path segments from the crate root
    line: int


@dataclass
class ModuleScan:
    inline: list[list[str]] = field(default_factory=list)  # inline modules, absolute
    refs: list[tuple[list[str], Ref]] = field(default_factory=list)  # (from module, reference)
    test_files: list[str] = field(default_factory=list)  # `#[cfg(test)] mod x;` file modules


def resolve_start(seg: str, here: list[str]) -> list[str] | None:
    if seg == "crate":
        return []
    if seg == "self":
        return list(here)
    if seg == "super":
        return here[:-1] if here else []
    return None


def parse_use_tree(toks: list[Tok], i: int, prefix: list[str] | None, out: list[Ref], here: list[str]) -> int:
    """Parse a use tree at `i` under `prefix` (absolute; None at the start of a `use`).

    Appends every path it names to `out`; returns the index after the tree."""
    path = None if prefix is None else list(prefix)
    while i < len(toks):
        t = toks[i].text
        if t == "{" and path is not None:
            end = matching(toks, i, "{", "}")
            j = i + 1
            while j < end:
                j = parse_use_tree(toks, j, path, out, here)
                while j < end and toks[j].text != ",":
                    j += 1
                j += 1
            return end + 1
        if t == "*" and path is not None:
            out.append(Ref(path, toks[i].line))
            return i + 1
        if not IDENT.fullmatch(t):
            return i
        if path is None:
            path = resolve_start(t, here)
            if path is None:
                return skip_path(toks, i)  # an external crate or a name in scope
        elif t == "super":
            path = path[:-1]
        elif t != "self":  # `{self, …}` names the prefix itself
            path = path + [t]
        line = toks[i].line
        i += 1
        if i < len(toks) and toks[i].text == "::":
            i += 1
            continue
        if i < len(toks) and toks[i].text == "as":
            i += 2
        out.append(Ref(path, line))
        return i
    return i


def skip_path(toks: list[Tok], i: int) -> int:
    while i < len(toks):
        t = toks[i].text
        if t == "{":
            return matching(toks, i, "{", "}") + 1
        if t in (";", ","):
            return i
        i += 1
    return i


def scan(toks: list[Tok], module: list[str]) -> ModuleScan:
    res = ModuleScan()
    stack: list[tuple[list[str], int]] = []  # (module path, depth at which its block closes)
    depth = 0
    i = 0
    here = list(module)
    while i < len(toks):
        t = toks[i].text
        if t == "mod" and i + 1 < len(toks) and IDENT.fullmatch(toks[i + 1].text) and i + 2 < len(toks):
            name, nxt = toks[i + 1].text, toks[i + 2].text
            if nxt == "{":
                if is_test_only(toks, i):
                    i = matching(toks, i + 2, "{", "}") + 1
                    continue
                stack.append((here, depth))
                here = here + [name]
                res.inline.append(here)
                depth += 1
                i += 3
                continue
            if nxt == ";" and is_test_only(toks, i):
                res.test_files.append(name)
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if stack and depth == stack[-1][1]:
                here = stack.pop()[0]
        elif t == "use":
            refs: list[Ref] = []
            j = i + 1
            if j < len(toks) and toks[j].text == "::":
                j += 1
            i = parse_use_tree(toks, j, None, refs, here)
            for r in refs:
                res.refs.append((here, r))
            continue
        elif t in ("crate", "super", "self") and (i == 0 or toks[i - 1].text not in ("::", "(", "in")) \
                and i + 1 < len(toks) and toks[i + 1].text == "::":
            path = resolve_start(t, here)
            line = toks[i].line
            i += 2
            while i < len(toks) and IDENT.fullmatch(toks[i].text):
                seg = toks[i].text
                path = path[:-1] if seg == "super" else path + [seg]
                i += 1
                if i < len(toks) and toks[i].text == "::" and i + 1 < len(toks) and IDENT.fullmatch(toks[i + 1].text):
                    i += 1
                else:
                    break
            res.refs.append((here, Ref(path, line)))
            continue
        i += 1
    return res


@dataclass
class Crate:
    name: str
    src: Path
    modules: dict[tuple[str, ...], Path] = field(default_factory=dict)  # module -> file
    edges: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = field(default_factory=dict)


def file_module(src: Path, f: Path) -> list[str] | None:
    rel = f.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[0] == "bin":
        return None  # binaries are crates of their own that use the library by name
    if parts in (["lib"],):
        return []
    if parts == ["main"]:
        return None
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def load_crate(src: Path, root: Path) -> Crate:
    crate = Crate(str(src.relative_to(root)) if src.is_relative_to(root) else str(src), src)
    scans: dict[tuple[str, ...], tuple[Path, ModuleScan]] = {}
    for f in sorted(src.rglob("*.rs")):
        module = file_module(src, f)
        if module is None:
            continue
        s = scan(tokenize(f.read_text(encoding="utf-8")), module)
        scans[tuple(module)] = (f, s)
        crate.modules[tuple(module)] = f
        for m in s.inline:
            crate.modules[tuple(m)] = f
    # files declared `#[cfg(test)] mod x;` are test code
    for module, (f, s) in list(scans.items()):
        for name in s.test_files:
            for m in [m for m in crate.modules if m[: len(module) + 1] == module + (name,)]:
                crate.modules.pop(m, None)
                scans.pop(m, None)
    # `pub use other_crate;` (or `as name`) at the root: paths under it leave the crate
    external: set[str] = set()
    if () in scans:
        toks = tokenize(scans[()][0].read_text(encoding="utf-8"))
        for k in range(len(toks) - 2):
            if toks[k].text == "use" and IDENT.fullmatch(toks[k + 1].text):
                j = k + 1
                name = toks[j].text
                if toks[j + 1].text == "as" and j + 2 < len(toks):
                    name = toks[j + 2].text
                if (name,) not in crate.modules and toks[k + 1].text not in ("crate", "self", "super"):
                    external.add(name)
    for module, (f, s) in scans.items():
        for here, ref in s.refs:
            if ref.target[:1] and ref.target[0] in external:
                continue
            target = tuple(ref.target)
            while target and target not in crate.modules:
                target = target[:-1]
            src_mod = tuple(here)
            if src_mod == target:
                continue
            shown = f.relative_to(root) if f.is_relative_to(root) else f
            crate.edges.setdefault((src_mod, target), f"{shown}:{ref.line}")
    return crate


def sccs(nodes: set, edges: dict) -> list[list]:
    """Tarjan's strongly connected components, iterative."""
    adj: dict = {n: sorted({b for (a, b) in edges if a == n}) for n in nodes}
    index: dict = {}
    low: dict = {}
    on: set = set()
    stack: list = []
    out: list[list] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, pi = work.pop()
            if pi == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on.add(v)
            recurse = False
            for k in range(pi, len(adj[v])):
                w = adj[v][k]
                if w not in index:
                    work.append((v, k + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
    return out


def cycles(crate: Crate) -> list[tuple[tuple[str, ...], list, dict]]:
    """For each parent module, the cycles among its direct children: (parent, component, edges)."""
    found = []
    parents = {m[:k] for m in crate.modules for k in range(len(m))}
    for parent in sorted(parents):
        d = len(parent)
        level: dict = {}
        for (a, b), where in crate.edges.items():
            if len(a) > d and len(b) > d and a[:d] == parent and b[:d] == parent and a[d] != b[d]:
                level.setdefault((a[d], b[d]), f"{'::'.join(a)} -> {'::'.join(b)} ({where})")
        nodes = {a for a, _ in level} | {b for _, b in level}
        for comp in sccs(nodes, level):
            inside = {k: v for k, v in sorted(level.items()) if k[0] in comp and k[1] in comp}
            found.append((parent, comp, inside))
    return found


def report(crates: list[Crate], out=sys.stdout) -> int:
    total = 0
    for crate in crates:
        for parent, comp, inside in cycles(crate):
            total += 1
            where = "::".join(parent) if parent else "(top level)"
            names = ["::".join(parent + (c,)) for c in comp]
            print(f"{crate.name}: cycle in {where}: {' <-> '.join(names)}", file=out)
            for (a, b), witness in inside.items():
                print(f"    {a} -> {b}: {witness}", file=out)
    if total:
        print(f"{total} cycle(s) among modules", file=out)
    else:
        print("no cycle among modules", file=out)
    return 1 if total else 0


def default_sources(root: Path) -> list[Path]:
    srcs = [root / "app" / "src"]
    srcs += sorted(p for p in (root / "crates").glob("*/src") if p.is_dir())
    return [p for p in srcs if p.is_dir()]


class SelfTest(unittest.TestCase):
    def crate(self, files: dict[str, str]) -> Crate:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        src = Path(tmp.name) / "src"
        for name, text in files.items():
            p = src / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        return load_crate(src, Path(tmp.name))

    def found(self, files: dict[str, str]) -> list[tuple[str, list[str]]]:
        return [("::".join(p), c) for p, c, _ in cycles(self.crate(files))]

    def test_a_planted_top_level_cycle_is_found(self):
        files = {
            "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
            "a.rs": "use crate::b::Thing;\n",
            "b.rs": "pub fn f() { crate::a::g(); }\n",
            "c.rs": "use crate::a;\n",
        }
        self.assertEqual(self.found(files), [("", ["a", "b"])])

    def test_siblings_through_super_and_use_groups(self):
        files = {
            "lib.rs": "pub mod store;\n",
            "store/mod.rs": "mod accounts;\nmod workspaces;\npub use accounts::A;\n",
            "store/accounts.rs": "use super::{workspaces::W, Store};\n",
            "store/workspaces.rs": "use crate::{store::{self, accounts::{self as acc}}};\n",
        }
        self.assertEqual(self.found(files), [("store", ["accounts", "workspaces"])])

    def test_a_chain_without_a_back_edge_is_no_cycle(self):
        files = {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b;\n// crate::a::x in a comment\n",
            "b.rs": 'const S: &str = "crate::a::x";\nfn f<\'a>(x: &\'a str) -> char { \'a\' }\n',
        }
        self.assertEqual(self.found(files), [])

    def test_test_modules_and_reexported_crates_are_ignored(self):
        files = {
            "lib.rs": "pub mod a;\npub mod b;\npub use other;\n",
            "a.rs": "use crate::b;\n",
            "b.rs": "use crate::other::a::x;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n    fn t() { crate::a::f(); }\n}\n",
        }
        self.assertEqual(self.found(files), [])

    def test_inline_modules_resolve_super_from_where_they_are(self):
        files = {
            "lib.rs": "pub mod api;\npub mod store;\n",
            "api.rs": "#[cfg(feature = \"ssr\")]\npub mod ssr {\n    use super::super::store::S;\n}\n",
            "store.rs": "fn f() { crate::api::ssr::g(); }\n",
        }
        self.assertEqual(self.found(files), [("", ["api", "store"])])

    def test_exit_status(self):
        import io

        files = {"lib.rs": "mod a;\nmod b;\n", "a.rs": "use crate::b;\n", "b.rs": "use crate::a;\n"}
        out = io.StringIO()
        self.assertEqual(report([self.crate(files)], out), 1)
        self.assertIn("a <-> b", out.getvalue())
        self.assertEqual(report([self.crate({"lib.rs": "mod a;\n", "a.rs": ""})], io.StringIO()), 0)


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--self-test"]:
        result = unittest.main(argv=[argv[0]], exit=False, verbosity=1).result
        return 0 if result.wasSuccessful() else 1
    if any(a.startswith("-") for a in argv[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parent.parent
    srcs = [Path(a).resolve() for a in argv[1:]] or default_sources(root)
    return report([load_crate(s, root) for s in srcs])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
