#!/usr/bin/env python3
"""Writes the wrk Lua scripts of bench/waf.sh into DIR: a 1 KiB form POST
(35 fields) and a 4 KiB JSON POST, both benign."""
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
lua(f"{out}/post_json_4k.lua", "application/json", body)
print(len(form), len(body))
