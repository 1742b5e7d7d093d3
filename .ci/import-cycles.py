#!/usr/bin/env python3
"""Import cycles between a Rust crate's modules (one module = one file).

    .ci/import-cycles.py DIR_OR_ROOT_FILE...

Each argument is a crate's `src/` (its roots: `lib.rs`, `main.rs`,
`bin/*.rs`, `bin/*/main.rs`), an example directory (its `main.rs`), or a
root file. From each root it follows the `mod x;` declarations
(`#[path]` included) to the crate's files; `dir/mod.rs` is the module
`dir`, inline `mod x { .. }` blocks belong to their file.

An edge M -> N means that M's code names something defined in N: a `use`
of `crate::..`, `super::..`, `self::..` or of a module in scope, or such a
path in code (`crate::x::Y`, `super::Y`, `child::f()`). Names are followed
through re-exports to the module that defines them. Comments (doc comments
included) and string literals are ignored.

* The crate root is not a node: its `mod` lines and re-exports are not
  edges. An edge to an item *defined* in the root (not re-exported there)
  is an upward edge: counted and listed, as information.
* A module's own `pub use` (any `pub(..)`) is a pass-through, not an edge
  of that module, unless its code also uses the name.
* Test modules inside a file count: `#[cfg(test)]` code is code.

Prints every cycle (a strongly connected component of more than one
module, with the names behind each edge inside it) and exits 1 if there is
one. Standard library only.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


# ---------------------------------------------------------------- lexing


def strip(src, keep_strings):
    """`src` without comments (and without string contents unless
    `keep_strings`), each removed character a space (newlines kept), so
    that offsets stay valid."""
    out = []
    i, n = 0, len(src)

    def blank(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif (c in "rb") and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.compile(r'b?r(#*)"').match(src, i)
            if m:
                end = src.find('"' + m.group(1), m.end())
                end = n if end < 0 else end + 1 + len(m.group(1))
                out.append(src[i:end] if keep_strings else blank(src[i:end]))
                i = end
            else:
                out.append(c)
                i += 1
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append(src[i:j] if keep_strings else '"' + blank(src[i + 1 : j - 1]) + '"')
            i = j
        elif c == "'":
            m = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^'\\])'").match(src, i)
            if m:
                out.append(blank(m.group(0)))
                i = m.end()
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text)


def parse_use_tree(text):
    """`a::b::{c, d::e as f, self, *}` -> [(segments, alias)]; a glob has
    alias '*'."""
    tokens = re.findall(IDENT + r"|::|[{},*]", text)
    pos = 0

    def tree(prefix):
        nonlocal pos
        segs = list(prefix)
        out = []
        while pos < len(tokens):
            t = tokens[pos]
            if t == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    if tokens[pos] == ",":
                        pos += 1
                        continue
                    out += tree(segs)
                pos += 1
                return out
            if t == "*":
                pos += 1
                return [(segs, "*")]
            if t == "::":
                pos += 1
                continue
            if t in (",", "}"):
                break
            if t == "as":
                alias = tokens[pos + 1]
                pos += 2
                return [(segs, alias)]
            if t == "self" and prefix and segs == list(prefix):
                # `{self}` or `{self as x}`: the prefix itself
                pos += 1
                if pos < len(tokens) and tokens[pos] == "as":
                    alias = tokens[pos + 1]
                    pos += 2
                    return [(segs, alias)]
                return [(segs, segs[-1])]
            segs.append(t)
            pos += 1
        return [(segs, segs[-1])] if segs else []

    return tree([])


# ---------------------------------------------------------------- the crate


class Module:
    def __init__(self, name, path, parent):
        self.name = name  # "crate", "a", "a::b"
        self.path = path
        self.parent = parent
        self.children = {}
        self.imports = {}  # alias -> (segments, is_pub, inline depth)
        self.globs = []
        self.code = ""  # comments and strings removed
        self.use_spans = []
        self.inline = []  # (start, end) of inline `mod x { }` blocks

    def depth(self, pos):
        return sum(1 for s, e in self.inline if s <= pos <= e)


MOD_DECL = re.compile(
    r"((?:#\s*\[[^\]]*\]\s*)*)(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;"
)
PATH_ATTR = re.compile(r'#\s*\[\s*path\s*=\s*"([^"]+)"\s*\]')
USE = re.compile(r"(\bpub(?:\s*\([^)]*\))?\s+)?\buse\s+([^;]+);")
PATH = re.compile(r"(?<![\w:.$])((?:" + IDENT + r")(?:\s*::\s*" + IDENT + r")+)")


class Crate:
    def __init__(self, root):
        self.modules = {}
        self.root = self.load(root, "crate", None, is_dir_owner=True)

    def load(self, path, name, parent, is_dir_owner):
        m = Module(name, path, parent)
        self.modules[name] = m
        with open(path, encoding="utf-8") as f:
            src = f.read()
        no_comments = strip(src, keep_strings=True)
        m.code = strip(src, keep_strings=False)
        for b in re.finditer(r"\bmod\s+" + IDENT + r"\s*\{", m.code):
            m.inline.append((b.end() - 1, matching_brace(m.code, b.end() - 1)))
        here = os.path.dirname(path)
        if is_dir_owner:
            child_dir = here
        else:
            child_dir = os.path.join(here, os.path.splitext(os.path.basename(path))[0])
        for d in MOD_DECL.finditer(no_comments):
            attrs, child = d.group(1), d.group(2)
            explicit = PATH_ATTR.search(attrs)
            if explicit:
                file = os.path.normpath(os.path.join(here, explicit.group(1)))
                owner = os.path.basename(file) == "mod.rs"
            else:
                file = os.path.join(child_dir, child + ".rs")
                owner = False
                if not os.path.exists(file):
                    file = os.path.join(child_dir, child, "mod.rs")
                    owner = True
            if not os.path.exists(file):
                print(f"warning: {path}: mod {child}: no file", file=sys.stderr)
                continue
            full = child if name == "crate" else f"{name}::{child}"
            m.children[child] = full
            self.load(file, full, m, owner)
        for u in USE.finditer(m.code):
            m.use_spans.append((u.start(), u.end()))
            is_pub = bool(u.group(1))
            for segs, alias in parse_use_tree(u.group(2)):
                if not segs:
                    continue
                if alias == "*":
                    m.globs.append((segs, m.depth(u.start())))
                else:
                    m.imports[alias] = (segs, is_pub, m.depth(u.start()))
        return m

    # ------------------------------------------------------------ resolution

    def resolve(self, m, segs, depth, seen):
        """('mod', M) or ('item', M, name) for a path written in `m` at
        inline depth `depth`; None if it leaves the crate."""
        s0 = segs[0]
        i = 1
        if s0 == "crate":
            cur = self.root
        elif s0 == "super":
            cur, d, i = m, depth, 0
            while i < len(segs) and segs[i] == "super":
                if d > 0:
                    d -= 1
                else:
                    cur = cur.parent
                    if cur is None:
                        return None
                i += 1
        elif s0 == "self":
            cur = m
        elif s0 in m.children:
            cur = self.modules[m.children[s0]]
        elif s0 in m.imports and (m.name, s0) not in seen:
            r = self.resolve_import(m, s0, seen)
            if r is None:
                return None
            if r[0] == "item":
                return r  # `Type::assoc`
            cur = self.modules[r[1]]
        else:
            return None
        while i < len(segs):
            seg = segs[i]
            if seg in cur.children:
                cur = self.modules[cur.children[seg]]
                i += 1
                continue
            if seg == "super" and cur.parent is not None:
                cur = cur.parent
                i += 1
                continue
            if seg in cur.imports and (cur.name, seg) not in seen:
                r = self.resolve_import(cur, seg, seen)
                if r is None:
                    return None
                if r[0] == "mod" and i + 1 < len(segs):
                    cur = self.modules[r[1]]
                    i += 1
                    continue
                return r
            return ("item", cur.name, seg)
        return ("mod", cur.name)

    def resolve_import(self, m, alias, seen):
        segs, _, depth = m.imports[alias]
        return self.resolve(m, segs, depth, seen | {(m.name, alias)})

    # ------------------------------------------------------------ edges

    def edges(self):
        """{(from, to): {names}} and {(module, root item)}."""
        edges = defaultdict(set)
        upward = set()

        def add(m, r, label):
            if r is None:
                return
            target = r[1]
            if target == m.name:
                return
            if target == "crate":
                if r[0] == "item":
                    upward.add((m.name, r[2]))
                return
            edges[(m.name, target)].add(label)

        for m in self.modules.values():
            if m is self.root:
                continue
            outside_uses = list(m.code)
            for s, e in m.use_spans:
                outside_uses[s:e] = " " * (e - s)
            code = "".join(outside_uses)
            # `pub(in crate::x)` is a visibility, not a use of `x`.
            code = re.sub(r"\bpub\s*\(\s*in\s+[^)]*\)", lambda v: " " * len(v.group(0)), code)
            for alias, (segs, is_pub, depth) in m.imports.items():
                if is_pub and not re.search(r"\b" + re.escape(alias) + r"\b", code):
                    continue  # a re-export only
                add(m, self.resolve(m, segs, depth, {(m.name, alias)}), alias)
            for segs, depth in m.globs:
                add(m, self.resolve(m, segs, depth, set()), "*")
            for p in PATH.finditer(code):
                segs = re.split(r"\s*::\s*", p.group(1))
                if segs[0] in m.imports or segs[0] in ("crate", "super", "self") or segs[0] in m.children:
                    r = self.resolve(m, segs, m.depth(p.start()), set())
                    add(m, r, "::".join(segs))
        return edges, upward


def sccs(nodes, adj):
    """Tarjan's strongly connected components."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj[v]):
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def roots_of(arg):
    if os.path.isfile(arg):
        return [arg]
    found = [os.path.join(arg, f) for f in ("lib.rs", "main.rs") if os.path.isfile(os.path.join(arg, f))]
    bin_dir = os.path.join(arg, "bin")
    if os.path.isdir(bin_dir):
        for f in sorted(os.listdir(bin_dir)):
            p = os.path.join(bin_dir, f)
            if f.endswith(".rs"):
                found.append(p)
            elif os.path.isfile(os.path.join(p, "main.rs")):
                found.append(os.path.join(p, "main.rs"))
    if not found:
        print(f"error: {arg}: no lib.rs, main.rs or bin/", file=sys.stderr)
    return found


def main(args):
    if not args:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    cycles = 0
    for arg in args:
        for root in roots_of(arg):
            crate = Crate(root)
            edges, upward = crate.edges()
            nodes = [n for n in crate.modules if n != "crate"]
            adj = defaultdict(set)
            for a, b in edges:
                adj[a].add(b)
            comps = [c for c in sccs(nodes, adj) if len(c) > 1]
            cycles += len(comps)
            print(
                f"{root}: {len(nodes)} modules, {len(edges)} edges, "
                f"{len(comps)} cycle(s), {len(upward)} upward edge(s) to crate-root items"
            )
            for c in comps:
                print(f"  cycle: {' <-> '.join(c)}")
                for a in c:
                    for b in c:
                        if (a, b) in edges:
                            print(f"    {a} -> {b}: {', '.join(sorted(edges[(a, b)]))}")
            if upward:
                by_module = defaultdict(list)
                for mod, name in sorted(upward):
                    by_module[mod].append(name)
                listed = "; ".join(f"{mod}: {', '.join(names)}" for mod, names in by_module.items())
                print(f"  upward: {listed}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
