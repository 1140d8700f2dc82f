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

# EasyPost: a tracker.updated Event shaped like EasyPost/examples'
# official/fixtures/event-body.json, its header `hmac-sha256-hex=` and hex.
easypost = compact({
    "description": "tracker.updated", "mode": "production", "previous_attributes": {"status": "in_transit"},
    "created_at": "2024-08-02T19:26:52.000Z", "pending_urls": ["https://example.com/easypost"],
    "completed_urls": [], "id": "evt_1", "status": "pending", "object": "Event",
    "result": {"id": "trk_1", "object": "Tracker", "tracking_code": "1", "status": "in_transit",
               "status_detail": "arrived_at_facility", "updated_at": "2024-08-02T19:26:51Z",
               "weight": 614.4, "carrier": "FedEx"}})
easypost_batch = compact({"description": "batch.updated", "id": "evt_2", "object": "Event",
                          "result": {"id": "batch_1", "object": "Batch", "status": {"created": 0}}})
easypost_header = b"hmac-sha256-hex=" + mac(easypost).hex().encode()
write("easypost", [
    seed(0, [JSON, (b"x-hmac-signature", easypost_header)], easypost),
    seed(0, [JSON, (b"x-hmac-signature", mac(easypost).hex().encode())], easypost),
    seed(SIGN, [JSON], easypost),
    seed(SIGN | SECOND, [JSON], easypost),
    seed(SIGN | FLIP, [JSON], easypost, position=100),
    seed(0, [(b"x-hmac-signature", easypost_header), (b"x-hmac-signature", easypost_header)], easypost),
    seed(SIGN, [JSON], easypost_batch),
    seed(SIGN | frames(1), [JSON], easypost),
])

# AfterShip: its documented webhook shape (tracking_update), base64 signature.
aftership = compact({
    "event": "tracking_update", "event_id": "94dadd60-ed26-46d0-aa52-3ced925a50ff",
    "is_tracking_first_tag": True, "msg": {"id": "00000000000000000000000000000000",
    "tracking_number": "0000000000000000", "slug": "usps", "tag": "Exception", "subtag": "Exception_011",
    "updated_at": "2024-04-10T09:34:56+00:00"}, "ts": 1712741696})
write("aftership", [
    seed(0, [JSON, (b"aftership-hmac-sha256", base64.b64encode(mac(aftership)))], aftership),
    seed(0, [JSON, (b"aftership-hmac-sha256", base64.b64encode(mac(aftership)).rstrip(b"="))], aftership),
    seed(SIGN, [JSON], aftership),
    seed(SIGN | SECOND, [JSON], aftership),
    seed(SIGN | FLIP, [JSON], aftership, position=100),
    seed(SIGN, [JSON], compact({"event": "edd_revise", "msg": {"tracking_number": "1", "tag": "InTransit"}})),
    seed(SIGN | frames(4), [JSON], aftership),
])

# Sendcloud: its documented example (`{"key": "value"}`), a parcel status
# change, the test button's `test_webhook` and an integration event.
sendcloud = compact({
    "action": "parcel_status_changed", "timestamp": 1525271885993,
    "parcel": {"id": 1, "tracking_number": "3SYZXG132912330", "status": {"id": 12, "message": "Awaiting customer pickup"}}})
write("sendcloud", [
    seed(0, [JSON, (b"sendcloud-signature", mac(sendcloud).hex().encode())], sendcloud),
    seed(0, [(b"sendcloud-signature", hmac.new(b"secretkey", b'{"key": "value"}', hashlib.sha256).hexdigest().encode())],
         b'{"key": "value"}'),
    seed(SIGN, [JSON], sendcloud),
    seed(SIGN | SECOND, [JSON], sendcloud),
    seed(SIGN | FLIP, [JSON], sendcloud, position=60),
    seed(SIGN, [JSON], compact({"action": "test_webhook", "timestamp": 1525271885993})),
    seed(SIGN, [JSON], compact({"action": "integration_updated", "timestamp": 1525271885993,
                                "integration": {"id": 1, "shop_name": "API Integration"}})),
    seed(SIGN | frames(1), [JSON], sendcloud),
])

# Shippo's Track, as its SDK docs describe it, and the header integrations
# read: `t=<unix>,v1=<hex HMAC of "<t>.<body>">` (a past `t`: stale unsigned).
shippo = compact({"event": "track_updated", "test": False, "data": {
    "carrier": "usps", "tracking_number": "9205590164917312751089", "tracking_status": {
        "object_id": "ce48ff3d52a34e91b77aa98370182624", "status": "DELIVERED",
        "status_date": "2016-07-23T13:03:00Z", "substatus": {"code": "delivered"}}}})
shippo_t = b"1700000000"
shippo_header = b"t=" + shippo_t + b",v1=" + mac(shippo_t + b"." + shippo).hex().encode()
transaction = compact({"event": "transaction_updated", "test": True, "data": {
    "object_id": "70ae8117ee1749e393f249d5b77c45e0", "object_updated": "2024-03-04T05:06:07Z",
    "tracking_number": "9499907123456123456781", "tracking_status": "TRANSIT"}})
write("shippo", [
    seed(0, [JSON, (b"shippo-auth-signature", shippo_header)], shippo),
    seed(SIGN, [JSON], shippo),
    seed(SIGN | SECOND, [JSON], shippo),
    seed(SIGN | FLIP, [JSON], shippo, position=200),
    seed(SIGN, [JSON], transaction),
    seed(0, [JSON, (b"shippo-auth-signature", shippo_header), (b"shippo-auth-signature", shippo_header)], shippo),
    seed(0, [JSON, (b"shippo-auth-signature", shippo_header + b",v1=" + b"0" * 64 + b",v0=x")], shippo),
    seed(SIGN | frames(1), [JSON], shippo),
])

# ShipBob's logistics sample and the asyncapi's example headers (Standard
# Webhooks: `v1,<base64 HMAC of "<id>.<timestamp>.<body>">`, an unpadded
# variant, and a `v1a` entry to ignore).
shipbob = compact({"event_time": "2025-10-23T15:55:09.3614767Z", "order_id": 100000001,
                   "reference_id": "TEST101", "status": "LabelCreated",
                   "tracking": {"carrier": "USPS", "tracking_id": "9261290306529427911297"}})
shipbob_id, shipbob_ts = b"msg_31eW7bWRi16lL0Ajjik68kfyeUh", b"1755884852"
shipbob_signature = b"v1," + base64.b64encode(mac(shipbob_id + b"." + shipbob_ts + b"." + shipbob))
standard = [(b"webhook-id", shipbob_id), (b"webhook-timestamp", shipbob_ts)]
topic = (b"x-webhook-topic", b"order.shipment.tracking.updated")
write("shipbob", [
    seed(0, [JSON, topic, *standard, (b"webhook-signature", shipbob_signature)], shipbob),
    seed(0, [JSON, topic, *standard, (b"webhook-signature", shipbob_signature.rstrip(b"="))], shipbob),
    seed(0, [JSON, topic, *standard,
             (b"webhook-signature", b"v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw " + shipbob_signature)], shipbob),
    seed(SIGN, [JSON, topic, (b"webhook-id", shipbob_id)], shipbob),
    seed(SIGN | SECOND, [JSON, topic], shipbob),
    seed(SIGN | FLIP, [JSON, topic, (b"webhook-id", shipbob_id)], shipbob, position=150),
    seed(SIGN, [JSON, (b"x-webhook-topic", b"order.shipment.delivered")],
         compact({"shipment_id": 987654, "order_id": 100000001})),
    seed(0, [JSON, *standard, (b"webhook-signature", shipbob_signature),
             (b"webhook-signature", shipbob_signature)], shipbob),
    seed(SIGN | frames(1), [JSON, topic], shipbob),
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
