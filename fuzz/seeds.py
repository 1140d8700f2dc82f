#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora to fuzz/seeds/<target>/: requests
shaped like each provider's documented webhooks, in the input format that
fuzz/src/lib.rs reads (flags byte, bit position, header lines, blank line,
body). Run from anywhere; rewrites the seeds."""

import base64, hashlib, hmac, json, pathlib, shutil, subprocess

SECRETS = [b"fuzz-secret-of-thirty-two-bytes!", b"the-previous-fuzz-secret-32-byte"]
SIGN, FLIP, SECOND, STRING = 1, 2, 4, 8


def frames(size):
    """Flags bits 4 to 7: the body sent in frames of `size` bytes (a power of two)."""
    return size.bit_length() << 4

ROOT = pathlib.Path(__file__).resolve().parent / "seeds"


def mac(message, key=SECRETS[0]):
    return hmac.new(key, message, hashlib.sha256).digest()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def compact(value):
    return json.dumps(value, separators=(",", ":")).encode()


def seed(flags, headers, body, position=0):
    head = b"\n".join(b"%s: %s" % (name, value) for name, value in headers)
    return bytes([flags]) + position.to_bytes(2, "big") + head + b"\n\n" + body


def write(target, seeds):
    folder = ROOT / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for index, data in enumerate(seeds):
        (folder / f"seed-{index:02}").write_bytes(data)


JSON = (b"content-type", b"application/json")

# Kosmo's page: its example body and signature, made with its example secret
# (not the fuzz secrets, so unsigned it is a forgery).
kosmo = compact({
    "eventId": "9ddafe4f-010b-43e9-a0b4-baad0c46d9de", "orderId": "SG-19ALqYm4s6P",
    "timestamp": "2023-02-23T04:22:15Z", "status": "COMPLETED",
    "stops": [{"type": "PICKUP", "address": "1 Raffles Place, Singapore 048616"}],
})
fields = b"9ddafe4f-010b-43e9-a0b4-baad0c46d9de" + b"SG-19ALqYm4s6P" + b"2023-02-23T04:22:15Z"
kosmo_signature = base64.b64encode(mac(fields))
write("kosmo", [
    seed(0, [JSON, (b"x-kosmo-signature", kosmo_signature)], kosmo),
    seed(0, [JSON, (b"x-kosmo-signature", b"xQ9NddICmM1PeGZKrhpdlWz2ILz4X4iw8t4oSAYmueU=")], kosmo),
    seed(SIGN, [JSON], kosmo),
    seed(SIGN | SECOND, [JSON], kosmo),
    seed(SIGN | FLIP, [JSON], kosmo, position=12 * 8),
    seed(0, [(b"x-kosmo-signature", kosmo_signature), (b"x-kosmo-signature", kosmo_signature)], kosmo),
    seed(SIGN, [JSON], compact({"eventId": "e", "orderId": "o", "timestamp": "2023-02-23T04:22:15+01:00"})),
    seed(SIGN | frames(1), [JSON], kosmo),
])

kourier = compact({"event": "delivery.updated", "delivery_id": "abc123", "status": "in_transit",
                   "timestamp": "2024-09-14T14:30:00Z"})
write("kourier", [
    seed(0, [JSON, (b"authorization", b"Bearer " + SECRETS[0])], kourier),
    seed(0, [JSON, (b"authorization", b"bearer   " + SECRETS[1])], kourier),
    seed(0, [JSON, (b"authorization", b"Basic " + base64.b64encode(SECRETS[0]))], kourier),
    seed(SIGN, [JSON], kourier),
    seed(SIGN | FLIP, [JSON], kourier, position=40),
    seed(SIGN, [JSON], compact({"event": "delivery.cancelled", "delivery_id": 42, "status": "cancelled"})),
    seed(SIGN | frames(16), [JSON], kourier),
])

goshiip = compact({"shipment": {"data": {
    "destination": "David Ola Ojeniyi St, Ibadan, Nigeria", "reference": "5lqijs7rm9n0",
    "id": "565", "status": "In Progress"}, "carrier": "DHL"}})
write("goshiip", [
    seed(0, [JSON, (b"x-signature", mac(goshiip).hex().encode())], goshiip),
    seed(0, [JSON, (b"x-signature", mac(goshiip).hex().upper().encode())], goshiip),
    seed(SIGN, [JSON], goshiip),
    seed(SIGN | SECOND, [JSON], goshiip),
    seed(SIGN | FLIP, [JSON], goshiip, position=100),
    seed(SIGN, [JSON], goshiip.replace(b",", b", ")),
    # Near the targets' 2 KiB limit, one byte a frame: kept frame by frame,
    # such a body once held 34 times its size.
    seed(SIGN | frames(1), [JSON], goshiip.replace(b'"DHL"', b'"DHL","note":"' + b"x" * 1800 + b'"')),
])

# Shipmondo's page: the JWT's payload is a JSON string holding the JSON.
claims = {"webhook": "Webhook1", "data": {"id": 119175, "order_id": "2042", "order_status": "sent",
                                         "updated_at": "2024-07-08T10:08:58.541+02:00"},
          "url": "https://example.com/webhook"}
smd = [(b"smd-resource-type", b"Orders"), (b"smd-resource-id", b"119175"),
       (b"smd-webhook-id", b"1234"), (b"smd-action", b"status_update"), (b"smd-user", b"Webshop API")]
# The test Shipmondo sends when a webhook is created, and the shapes public
# receivers have met: `data` as a string holding the object, and a Shipment
# Monitor (no `id`, the shipment's `shipment_id`).
connection_test = {"action": "connection_test", "webhook": "Webhook1", "url": "https://example.com/webhook"}
data_as_string = dict(claims, data=compact(claims["data"]).decode())
monitor = {"webhook": "Tracking", "url": "https://example.com/webhook", "data": {
    "shipment_id": 3405958, "current_state": "PROGRESSING", "current_status": "AVAILABLE_FOR_DELIVERY",
    "current_status_registered_at": "2017-06-16T08:25:44.557+02:00", "carrier_code": "gls",
    "carrier_track_id": "00157128520000003116"}}
monitor_smd = [(b"smd-resource-type", b"Shipment Monitor"), (b"smd-resource-id", b"3405958"),
               (b"smd-action", b"latest")]


def token(header, payload, key=SECRETS[0]):
    signed = b64url(header) + b"." + b64url(payload)
    return signed + b"." + b64url(mac(signed, key))


as_string = json.dumps(compact(claims).decode()).encode()
write("shipmondo", [
    seed(0, [JSON, *smd], b'{"data":"' + token(b'{"alg":"HS256"}', as_string) + b'"}'),
    seed(0, [JSON, *smd], b'{"data":"' + token(b'{"alg":"HS256","typ":"JWT"}', compact(claims), SECRETS[1]) + b'"}'),
    seed(SIGN, [JSON, *smd], as_string),
    seed(SIGN, [JSON, *smd], compact(claims)),
    seed(SIGN | FLIP, [JSON, *smd], as_string, position=300),
    seed(SIGN, [JSON, (b"smd-resource-type", b"Shipments"), (b"smd-action", b"cancel")],
         compact({"data": {"id": 3405958, "carrier_code": "gls"}})),
    seed(SIGN, [JSON], json.dumps(compact(connection_test).decode()).encode()),
    seed(SIGN, [JSON, (b"smd-resource-type", b"Orders"), (b"smd-action", b"create")], compact(connection_test)),
    seed(SIGN, [JSON, *smd], json.dumps(compact(data_as_string).decode()).encode()),
    seed(SIGN, [JSON, *monitor_smd], json.dumps(compact(monitor).decode()).encode()),
    seed(0, [JSON, *smd], b'{"data":"' + token(b'{"alg":"HS256"}', as_string) + b'","evil":"unsigned"}'),
    seed(SIGN | frames(1), [JSON, *smd], as_string),
])

write("shipmondo_jwt", [
    seed(SIGN | STRING, [], compact(claims)).replace(b"\n\n", b'{"alg":"HS256"}\n\n', 1),
    seed(SIGN, [], compact(claims)).replace(b"\n\n", b'{"alg":"HS256","typ":"JWT"}\n\n', 1),
    seed(SIGN, [], compact(claims)).replace(b"\n\n", b'{"alg":"HS256","crit":["exp"],"exp":1}\n\n', 1),
    seed(SIGN, [], compact(claims)).replace(b"\n\n", b'{"alg":"none"}\n\n', 1),
    seed(SIGN | SECOND | STRING, [], compact({"data": {"id": 3405958, "current_status": "DELIVERED"}}))
        .replace(b"\n\n", b'{"alg":"HS256"}\n\n', 1),
    seed(0, [], token(b'{"alg":"HS256"}', as_string)),
    seed(SIGN | STRING, [], compact(connection_test)).replace(b"\n\n", b'{"alg":"HS256"}\n\n', 1),
    seed(SIGN | STRING, [], compact(data_as_string)).replace(b"\n\n", b'{"alg":"HS256"}\n\n', 1),
    seed(SIGN | STRING, [], compact(monitor)).replace(b"\n\n", b'{"alg":"HS256"}\n\n', 1),
    seed(SIGN | STRING | frames(2), [], compact(claims)).replace(b"\n\n", b'{"alg":"HS256"}\n\n', 1),
])

# ShipEngine / ShipStation API v2: ShipStation's schema sample and a
# ShipEngine-era one, signed (RSA-SHA256 over "<timestamp>.<body>") with the
# testing kit's demo key by OpenSSL, or by the target (SIGN; SECOND picks the
# other key).
REPO = pathlib.Path(__file__).resolve().parent.parent
DEMO_KEY = REPO / "src" / "shipengine" / "demo-private-key.pem"


def rsa_sign(message, key=DEMO_KEY):
    signed = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)],
                            input=message, capture_output=True, check=True).stdout
    return base64.b64encode(signed)


track_v2 = compact({"resource_url": "https://api.shipstation.com/v2/labels/se-1234567890/track",
                    "resource_type": "TRACK_EVENT_V2", "data": {
                        "tracking_number": "1Z0000000000000000", "status_code": "NY",
                        "status_description": "Not Yet In System", "carrier_code": "ups",
                        "estimated_delivery_date": "2026-04-30T00:00:00", "events": []}})
track_v1 = compact({"resource_url": "https://api.shipengine.com/v1/labels/se-28529731/track",
                    "resource_type": "API_TRACK", "data": {
                        "tracking_number": "1Z932R800392060079", "status_code": "DE",
                        "carrier_code": "ups", "events": [
                            {"occurred_at": "2026-12-07T18:40:00Z", "description": "DELIVERED"}]}})
batch = compact({"resource_url": "https://api.shipengine.com/v1/batches/se-1013119",
                 "resource_type": "API_BATCH"})
TS = b"2026-12-07T19:00:00Z"
KID = (b"x-shipengine-rsa-sha256-key-id", b"shipment-webhooks-demo")


def shipengine_headers(body, ts=TS):
    return [JSON, KID, (b"x-shipengine-timestamp", ts),
            (b"x-shipengine-rsa-sha256-signature", rsa_sign(ts + b"." + body))]


write("shipengine", [
    seed(0, shipengine_headers(track_v1), track_v1),
    seed(0, shipengine_headers(track_v2, b"1765134000"), track_v2),
    seed(SIGN, [JSON], track_v2),
    seed(SIGN | SECOND, [JSON], track_v1),
    seed(SIGN | FLIP, [JSON], track_v1, position=200),
    seed(SIGN, [JSON, (b"x-shipengine-timestamp", b"2026-12-07T19:00:00.1234567")], batch),
    # Signed over the body alone, and the signature header twice.
    seed(0, [JSON, KID, (b"x-shipengine-timestamp", TS),
             (b"x-shipengine-rsa-sha256-signature", rsa_sign(track_v1))], track_v1),
    seed(0, shipengine_headers(track_v1) + [shipengine_headers(track_v1)[-1]], track_v1),
    seed(SIGN | frames(1), [JSON], track_v2),
])
