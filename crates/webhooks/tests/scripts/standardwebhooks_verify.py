"""Verifies deliveries with the independent `standardwebhooks` package (PyPI).

Reads a JSON list of {"secret", "headers", "body"} on stdin; exits 0 if every one verifies,
1 with the first failure on stderr otherwise, 2 if the package is not installed.
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    sys.stderr.write("the standardwebhooks package is missing: pip install standardwebhooks\n")
    sys.exit(2)

deliveries = json.load(sys.stdin)
for i, d in enumerate(deliveries):
    try:
        Webhook(d["secret"]).verify(d["body"], d["headers"])
    except Exception as e:  # noqa: BLE001 - report any failure with its index
        sys.stderr.write(f"delivery {i}: {type(e).__name__}: {e}\n")
        sys.exit(1)
print(f"verified {len(deliveries)} deliveries")
