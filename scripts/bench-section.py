#!/usr/bin/env python3
"""Replaces one section of BENCHMARKS.md (between <!-- NAME --> and <!-- /NAME -->) with standard
input, appending it when the file has no such section yet, so that each benchmark script keeps its
own figures and leaves the others'.    usage: some-command | scripts/bench-section.py NAME"""
import pathlib
import re
import sys

name = sys.argv[1]
path = pathlib.Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
text = path.read_text() if path.exists() else "# Benchmarks\n"
block = f"<!-- {name} -->\n{sys.stdin.read().strip()}\n<!-- /{name} -->"
pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
path.write_text(text)
