#!/usr/bin/env python3
"""Writes the wrk Lua scripts of bench/waf.sh into DIR: a 1 KiB form POST
(35 fields), a 16 KiB form POST (the same 35 fields, longer values: the
cost per byte), a form of 500 short fields (the cost per argument) and a
4 KiB JSON POST, all benign."""
import json
import sys

out = sys.argv[1]
fields = [f"field{i:02d}=value+number+{i:02d}+ok" for i in range(35)]
form = "&".join(fields)
form = form + "&pad=" + "x" * max(0, 1024 - len(form) - 5)
items = [{"id": i, "name": f"item {i}", "tags": ["blue", "large"], "price": 12.5 + i, "stock": True}
         for i in range(40)]
doc = {"order": {"customer": "Jane Doe", "items": items}}
body = json.dumps(doc)
while len(body) < 4096:
    doc["order"]["note"] = doc["order"].get("note", "") + "thanks "
    body = json.dumps(doc)


def lua(path, ctype, body):
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f'wrk.headers["Content-Type"] = "{ctype}"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")


lua(f"{out}/post_form_1k.lua", "application/x-www-form-urlencoded", form)
long_fields = [f"field{i:02d}=" + "+".join(["value", "number", f"{i:02d}", "ok"] * 26) for i in range(35)]
form16 = "&".join(long_fields)
form16 = form16 + "&pad=" + "x" * max(0, 16384 - len(form16) - 5)
lua(f"{out}/post_form_16k.lua", "application/x-www-form-urlencoded", form16)
args500 = "&".join(f"f{i:03d}=v{i:03d}" for i in range(500))
lua(f"{out}/post_args_500.lua", "application/x-www-form-urlencoded", args500)
lua(f"{out}/post_json_4k.lua", "application/json", body)
print(len(form), len(form16), len(args500), len(body))
