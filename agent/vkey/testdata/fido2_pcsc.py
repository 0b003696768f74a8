"""Registers and authenticates with the FIDO applet of the virtual key in
one PC/SC reader, through python-fido2 (CTAP2 over PC/SC), and prints what
a relying party received as JSON for the Go test to verify again.

usage: python3 fido2_pcsc.py READER PIN
The PIN is set on the key first (the key must have none).
"""
import json
import sys

from fido2.client import Fido2Client
from fido2.ctap2 import ClientPin, Ctap2
from fido2.pcsc import CtapPcscDevice
from fido2.server import Fido2Server
from fido2.webauthn import PublicKeyCredentialRpEntity

reader, pin = sys.argv[1], sys.argv[2]
devices = [d for d in CtapPcscDevice.list_devices() if d._name == reader]
if not devices:
    sys.exit("no FIDO applet answered in reader %r" % reader)
dev = devices[0]

ctap = Ctap2(dev)
ClientPin(ctap).set_pin(pin)

client = Fido2Client(dev, "https://keyfleet.test")
rp = PublicKeyCredentialRpEntity("keyfleet.test", "keyfleet")
server = Fido2Server(rp, attestation="direct")
user = {"id": b"user-1", "name": "alice", "displayName": "Alice"}

options, state = server.register_begin(user, user_verification="discouraged")
made = client.make_credential(options["publicKey"], pin=pin)
auth_data = server.register_complete(state, made.client_data, made.attestation_object)

options, state = server.authenticate_begin([auth_data.credential_data])
got = client.get_assertion(options["publicKey"], pin=pin).get_response(0)
server.authenticate_complete(
    state,
    [auth_data.credential_data],
    got.credential_id,
    got.client_data,
    got.authenticator_data,
    got.signature,
)

print(json.dumps({
    "versions": ctap.info.versions,
    "attestation_object": bytes(made.attestation_object.with_string_keys()).hex(),
    "client_data": bytes(made.client_data).hex(),
    "credential_id": bytes(auth_data.credential_data.credential_id).hex(),
    "assertion_flags": got.authenticator_data.flags,
    "counter": got.authenticator_data.counter,
}))
