"""After a schemathesis run: no 5xx anywhere, and every operation of the document answered
with at least one 2xx (a run that never got past validation proves little)."""
import json
import re
import sys
import urllib.parse
import urllib.request

import yaml

cassette_path, document_url = sys.argv[1], sys.argv[2]
document = json.load(urllib.request.urlopen(document_url))
operations = {}
for path, item in document["paths"].items():
    pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
    for method in item:
        # A stream never ends: scripts/contract leaves it out (tests/api/live.rs checks it).
        streams = "text/event-stream" in item[method].get("responses", {}).get("200", {}).get("content", {})
        # A reset's token comes only by mail (tests/api/mail.rs uses one): its 2xx is not asked.
        needs_mail = path == "/api/users/password-reset/confirm"
        if method in ("get", "post", "put", "delete") and not streams and not needs_mail:
            operations[(method.upper(), path)] = (pattern, [])

with open(cassette_path) as f:
    cassette = yaml.safe_load(f)
server_errors = []
for interaction in cassette["http_interactions"]:
    request, response = interaction["request"], interaction["response"]
    method, path = request["method"], urllib.parse.urlparse(request["uri"]).path
    status = int(response["status"]["code"])
    if status >= 500:
        server_errors.append(f"{method} {path} -> {status}")
    for (op_method, op_path), (pattern, statuses) in operations.items():
        if op_method == method and pattern.match(path):
            statuses.append(status)
            break

failed = False
if server_errors:
    failed = True
    print(f"{len(server_errors)} responses were 5xx:", *server_errors[:20], sep="\n  ")
print("operation, requests, 2xx:")
for (method, path), (_, statuses) in sorted(operations.items(), key=lambda kv: kv[0][1]):
    ok = sum(1 for s in statuses if 200 <= s < 300)
    print(f"  {method:6} {path:40} {len(statuses):5} {ok:5}")
    if ok == 0:
        failed = True
        print(f"    never answered 2xx: {sorted(set(statuses))}")
sys.exit(1 if failed else 0)
