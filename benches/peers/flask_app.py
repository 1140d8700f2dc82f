"""GoShiip's Python sample receiver (shared/providers/goshiip.md), as its page
prints it but for a secret from the environment; run under gunicorn."""
import hashlib
import hmac
import os

from flask import Flask, abort, request

app = Flask(__name__)
secret = os.environ.get("GOSHIIP_WEBHOOK_SECRET", "your_secret_key").encode()


@app.route("/webhook", methods=["POST"])
def webhook():
    payload = request.data
    received_signature = request.headers.get("X-Signature")

    calculated_signature = hmac.new(secret, payload, hashlib.sha256).hexdigest()

    if hmac.compare_digest(calculated_signature, received_signature):
        return "Valid signature", 200
    else:
        abort(403, "Invalid signature")
