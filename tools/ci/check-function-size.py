#!/usr/bin/env python3
"""Fails when a function in frontend/, backend/ or shared-ring/ is longer than the limit (80 lines).

A function's length is the lines from its opening brace to its closing brace, both included, as clang-tidy's
readability-function-size LineThreshold counts them. Only outermost bodies count: a lambda or a local class
belongs to the function around it. The scan is lexical (comments, strings and preprocessor lines are blanked
first), which is enough for this code base; it needs nothing but python3, so it runs before the build.

The allow-list (tools/ci/function-size-allow.txt) names the functions that may be longer, one per line:
    path  qualified-name  reason
(a message-type switch reads better as one switch than as a table). Every entry needs a reason, and an entry
that names no long function any more is an error too, so the list never outlives its functions.

Usage: tools/ci/check-function-size.py [--limit N] [--allow FILE] [--list] [paths...]
"""
import argparse
import os
import re
import sys

DIRS = ("frontend", "backend", "shared-ring")
EXTS = (".cpp", ".hpp", ".h", ".cc")

SCOPE = re.compile(r"\b(namespace|class|struct|union|enum)\b")
# A function body's brace follows the parameter list and its qualifiers, or a constructor's initialiser list.
QUALS = r"(\s|const|noexcept(\s*\([^()]*\))?|override|final|mutable|&|&&|->[^;{}]*)*"
FUNC_END = re.compile(r"\)" + QUALS + r"$")
CTOR_INIT = re.compile(r"\)\s*(noexcept\s*)?:[^:]")
CONTROL = re.compile(r"^(if|for|while|switch|catch|do|else|return)\b")


def blank(text):
    """The text with comments, string and character literals and preprocessor lines replaced by spaces
    (newlines kept, so line numbers stay)."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#" or (line_start and c in " \t" and text[i:].lstrip(" \t").startswith("#")):
            # preprocessor line, with its continuations
            j = i
            while j < n:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                if k > 0 and text[k - 1] == "\\":
                    j = k + 1
                    continue
                break
            seg = text[i:k]
            out.append(re.sub(r"[^\n]", " ", seg))
            i = k
            continue
        if text.startswith("//", i):
            k = text.find("\n", i)
            k = n if k < 0 else k
            out.append(" " * (k - i))
            i = k
            continue
        if text.startswith("/*", i):
            k = text.find("*/", i + 2)
            k = n if k < 0 else k + 2
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
            continue
        m = re.match(r'R"([^(\s]*)\(', text[i:i + 20]) if c == "R" and (i == 0 or not text[i - 1].isalnum()) else None
        if m:
            end = ")" + m.group(1) + '"'
            k = text.find(end, i + m.end())
            k = n if k < 0 else k + len(end)
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:k]))
            i = k
            continue
        if c in "\"'":
            if c == "'" and i > 0 and (text[i - 1].isalnum()):  # digit separator 1'000
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
            continue
        out.append(c)
        line_start = c == "\n" or (line_start and c in " \t")
        i += 1
    return "".join(out)


def name_of(header):
    """The function's (qualified) name: the identifier before the parameter list's opening parenthesis."""
    h = " ".join(header.split())
    depth_angle = 0
    for i, c in enumerate(h):
        if c == "<" and not h[:i].rstrip().endswith("operator"):
            depth_angle += 1
        elif c == ">" and depth_angle > 0 and not h[:i].endswith("-"):
            depth_angle -= 1
        elif c == "(" and depth_angle == 0:
            m = re.search(r"((?:[\w~]+\s*::\s*)*(?:operator\s*[^\s(]+|operator\s*\(\s*\)|[\w~]+))\s*$", h[:i])
            if m:
                return re.sub(r"\s+", "", m.group(1))
    return h.strip()[:60]


def functions(text):
    """(name, first line, last line) of every outermost function body in `text` (already blanked)."""
    found = []
    stack = []  # kinds of the open braces: 'scope', 'func', 'other'
    header_start = 0
    line = 1
    func_open_line = 0
    func_name = ""
    in_func = 0  # depth inside the current outermost function (0: none)
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
            continue
        if in_func:
            if c == "{":
                in_func += 1
            elif c == "}":
                in_func -= 1
                if in_func == 0:
                    found.append((func_name, func_open_line, line))
                    stack.pop()
                    header_start = i + 1
            continue
        if c == ";":
            header_start = i + 1
        elif c == "{":
            header = text[header_start:i].strip()
            flat = " ".join(header.split())
            if SCOPE.search(flat) and not FUNC_END.search(flat) and "(" not in flat.split("{")[0]:
                stack.append("scope")
                header_start = i + 1
            elif (FUNC_END.search(flat) or (CTOR_INIT.search(flat) and re.search(r"[)}]\s*$", flat))) \
                    and not CONTROL.match(flat) and not flat.endswith("="):
                stack.append("func")
                in_func = 1
                func_open_line = line
                func_name = name_of(flat)
            else:
                stack.append("other")  # an initialiser (kept in the header: a constructor's member init)
        elif c == "}":
            kind = stack.pop() if stack else "scope"
            if kind == "scope":
                header_start = i + 1
    return found


def scan(paths):
    for p in paths:
        with open(p, encoding="utf-8") as f:
            text = blank(f.read())
        for name, first, last in functions(text):
            yield p, name, first, last


def source_files(top, roots):
    for r in roots:
        base = os.path.join(top, r)
        if os.path.isfile(base):
            yield r
            continue
        for d, _, files in os.walk(base):
            for fn in sorted(files):
                if fn.endswith(EXTS):
                    yield os.path.relpath(os.path.join(d, fn), top)


def read_allow(path):
    entries, errors = {}, []
    if not os.path.exists(path):
        return entries, errors
    with open(path, encoding="utf-8") as f:
        for no, raw in enumerate(f, 1):
            s = raw.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split(None, 2)
            if len(parts) < 3 or not parts[2].strip():
                errors.append(f"{path}:{no}: an entry is `path name reason`; this one gives no reason")
                continue
            entries[(parts[0], parts[1])] = (parts[2].strip(), no)
    return entries, errors


def main():
    top = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--allow", default=os.path.join(top, "tools", "ci", "function-size-allow.txt"))
    ap.add_argument("--list", action="store_true", help="print every function over the limit, allowed or not")
    ap.add_argument("paths", nargs="*", help="files or folders (relative to the top); default: " + " ".join(DIRS))
    a = ap.parse_args()

    os.chdir(top)
    allow, errors = read_allow(a.allow)
    used = set()
    for path, name, first, last in scan(source_files(top, a.paths or DIRS)):
        n = last - first + 1
        if n <= a.limit:
            continue
        key = (path, name)
        if key in allow:
            used.add(key)
            if a.list:
                print(f"{path}:{first}: {name} is {n} lines (allowed: {allow[key][0]})")
            continue
        errors.append(f"{path}:{first}: {name} is {n} lines, more than {a.limit}: cut it into named steps, "
                      f"or add `{path} {name} <reason>` to {os.path.relpath(a.allow, top)}")
    if not a.paths:
        for key, (reason, no) in sorted(allow.items(), key=lambda kv: kv[1][1]):
            if key not in used:
                errors.append(f"{os.path.relpath(a.allow, top)}:{no}: {key[0]} {key[1]} is not longer than "
                              f"{a.limit} lines (or is gone): remove the entry")
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"check-function-size: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-function-size: no function in {', '.join(a.paths or DIRS)} is longer than {a.limit} lines "
          f"outside {os.path.relpath(a.allow, top)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
