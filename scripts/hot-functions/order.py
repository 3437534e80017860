#!/usr/bin/env python3
"""Turns a linker map and function-entry traces into a symbol-ordering file (development tool).

  order.py starts MAP          prints the offset of every function section in .text (for trace.c)
  order.py order MAP DIR...    prints the symbols of the functions traced in DIR/*.hits: first
                               those plugin processes ran (in the order they first ran), then
                               the agent's, then the rest of each later DIR's

lld places the listed functions first, in that order, so the code a plugin process runs sits
in a few pages instead of being spread over the whole binary.
"""
import os
import re
import sys

LINE = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+ (\s*)(.*)$")


def section_symbol(input_section):
    """The function a function section holds, by its mangled name (the map's symbol column is
    demangled, and lld's ordering file wants linkage names); None for a plain .text."""
    name = input_section.rsplit(":(", 1)[-1].rstrip(")")
    for prefix in (".text.unlikely.", ".text.startup.", ".text.exit.", ".text.hot.", ".text."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


def text_sections(map_path):
    """Yields (offset, size, [symbols]) for each input section of the output section .text."""
    in_text = False
    current = None
    with open(map_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            vma, size, indent, rest = int(m.group(1), 16), int(m.group(2), 16), len(m.group(3)), m.group(4)
            if indent == 0:  # an output section
                if current:
                    yield current
                    current = None
                in_text = rest == ".text"
            elif not in_text:
                continue
            elif indent == 8:  # an input section: "file:(.text.<mangled name>)"
                if current:
                    yield current
                name = section_symbol(rest)
                current = (vma, size, [name] if name else []) if size > 0 else None
            elif indent == 16 and current is not None and not current[2]:
                current[2].append(rest)  # a symbol of a plain .text section (C: not mangled)
    if current:
        yield current


def hits(directory):
    """[(command line, [offsets in first-run order])] of each traced process in directory."""
    out = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".hits"):
            continue
        with open(os.path.join(directory, name)) as f:
            lines = f.read().splitlines()
        cmd = lines[0][2:] if lines and lines[0].startswith("# ") else ""
        offsets = [int(x, 16) for x in lines[1:] if x and not x.startswith("#")]
        out.append((cmd, offsets))
    return out


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "starts":
        for vma in sorted({vma for vma, _, _ in text_sections(sys.argv[2])}):
            print(f"{vma:x}")
        return
    if len(sys.argv) >= 4 and sys.argv[1] == "order":
        symbols = {vma: syms for vma, _, syms in text_sections(sys.argv[2])}
        sizes = {vma: size for vma, size, _ in text_sections(sys.argv[2])}
        seen, order, total = set(), [], 0
        for directory in sys.argv[3:]:
            procs = hits(directory)
            # Plugin processes (the create first: it has the most hits) before the agent.
            plugins = sorted((p for p in procs if " agent" not in p[0]), key=lambda p: -len(p[1]))
            agents = [p for p in procs if " agent" in p[0]]
            for _, offsets in plugins + agents:
                for off in offsets:
                    if off in seen or off not in symbols:
                        continue
                    seen.add(off)
                    total += sizes[off]
                    order.extend(symbols[off])
        for s in order:
            print(s)
        print(f"order.py: {len(seen)} functions, {total / 1024:.0f} KiB", file=sys.stderr)
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
