"""A webhook receiver for the tests: verifies every delivery with the Standard Webhooks
reference library (`standardwebhooks`, pip) and records it.

    python webhook_receiver.py PORT SECRETS_FILE LOG_FILE

SECRETS_FILE is a JSON list of `whsec_` secrets, read again for every request. Each
POST is verified with each secret; a line of LOG_FILE records the message id, the
payload's type, the signature header and, per secret, whether it verified. The answer
is 204 when some secret verified, 401 otherwise. Prints "listening" once bound.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

PORT, SECRETS, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with open(SECRETS) as f:
            secrets = json.load(f)
        verified = []
        for s in secrets:
            try:
                Webhook(s).verify(body, headers)
                verified.append(True)
            except Exception:
                verified.append(False)
        try:
            kind = json.loads(body).get("type")
        except ValueError:
            kind = None
        record = {
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "type": kind,
            "verified": verified,
            "path": self.path,
        }
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(204 if any(verified) else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("listening", flush=True)
server.serve_forever()
