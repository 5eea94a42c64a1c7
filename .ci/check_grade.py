"""Checks a `cargo grade --json` document: every exercise has the expected status.

usage: check_grade.py REPORT.json STATUS [ID=STATUS ...]
The overrides name exercises whose status differs from the rest.
"""
import json
import sys

path, expected, *overrides = sys.argv[1:]
want = dict(o.split("=", 1) for o in overrides)
with open(path, encoding="utf-8") as f:
    report = json.load(f)
if report.get("schema") != 1:
    sys.exit(f"{path}: unknown schema {report.get('schema')!r}")
exercises = report["exercises"]
if not exercises:
    sys.exit(f"{path}: no exercises graded")
bad = []
for ex in exercises:
    status = want.pop(ex["id"], expected)
    if ex["status"] != status:
        bad.append(f"{ex['id']}: {ex['status']} (expected {status})")
        for t in ex.get("tests", []):
            if t["status"] != "passed":
                bad.append(f"    {t['name']}: {t['status']}: {t['message'][:400]}")
if want:
    bad.append(f"not graded: {', '.join(want)}")
if bad:
    print("\n".join(bad))
    sys.exit(1)
tests = sum(len(ex.get("tests", [])) for ex in exercises)
chapters = {}
for ex in exercises:
    chapters.setdefault(ex["id"].split("/")[0], []).append(ex)
for chapter, exs in chapters.items():
    print(f"  {chapter}: {len(exs)} exercises, {sum(len(e.get('tests', [])) for e in exs)} tests, all {expected}")
print(f"ok: {len(exercises)} exercises, {tests} tests, as expected")
