"""CTAP 2.1 scenarios against the FIDO applet of the virtual key in one
PC/SC reader, through python-fido2 (Debian's python3-fido2), printing what
the Go test checks as one JSON object.

usage: python3 ctap21.py READER PIN SCENARIO

Scenarios:
  info       authenticatorGetInfo as python-fido2 parses it
  accounts   set the PIN; register alice and bob (discoverable, hmac-secret,
             credProtect); a discoverable sign-in with both accounts
             (getNextAssertion); hmac-secret outputs, the salts also made
             the way the WebAuthn PRF extension makes them; credential
             management with a permission token (0x0A), then with a legacy
             token over the preview command (0x41): metadata, RPs,
             credentials, a user renamed, bob deleted
  pinblock   set the PIN; three wrong PINs; the right one refused until
             the key is plugged in again
  pinafter   the right PIN after the key was plugged in again
  reset      authenticatorReset, then what is left
"""
import hashlib
import json
import os
import sys

from fido2.client import Fido2Client
from fido2.ctap import CtapError
from fido2.ctap2 import ClientPin, Ctap2, CredentialManagement
from fido2.ctap2.extensions import CredProtectExtension
from fido2.pcsc import CtapPcscDevice
from fido2.webauthn import (
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions,
)

ORIGIN, RP_ID = "https://keyfleet.test", "keyfleet.test"
RP = {"id": RP_ID, "name": "keyfleet"}
ES256 = [{"type": "public-key", "alg": -7}]

reader, pin, scenario = sys.argv[1], sys.argv[2], sys.argv[3]
devices = [d for d in CtapPcscDevice.list_devices() if d._name == reader]
if not devices:
    sys.exit("no FIDO applet answered in reader %r" % reader)
dev = devices[0]


def err(e):
    return e.code.name if isinstance(e.code, CtapError.ERR) else "0x%02x" % e.code


def register(client, user, extensions):
    opts = PublicKeyCredentialCreationOptions(
        RP, user, os.urandom(32), ES256,
        authenticator_selection={"requireResidentKey": True, "userVerification": "discouraged"},
        extensions=extensions,
    )
    made = client.make_credential(opts, pin=pin)
    return made.attestation_object.auth_data, made.extension_results


def sign_in(client, extensions=None, allow=None, with_pin=True):
    opts = PublicKeyCredentialRequestOptions(
        os.urandom(32), rp_id=RP_ID, allow_credentials=allow,
        user_verification="discouraged", extensions=extensions,
    )
    sel = client.get_assertion(opts, pin=pin if with_pin else None)
    return [sel.get_response(i) for i in range(len(sel.get_assertions()))], sel


def prf_salt(text):
    # WebAuthn L3 §10.1.4: the PRF extension's salt is
    # SHA-256("WebAuthn PRF" || 0x00 || input).
    return hashlib.sha256(b"WebAuthn PRF\x00" + text).digest()


def hmac_outputs(client, cred_id, salt1, salt2=None):
    ext = {"hmacGetSecret": {"salt1": salt1}}
    if salt2:
        ext["hmacGetSecret"]["salt2"] = salt2
    allow = [{"type": "public-key", "id": cred_id}]
    got, _ = sign_in(client, ext, allow)
    out = got[0].extension_results["hmacGetSecret"]
    return [out["output1"].hex()] + ([out["output2"].hex()] if "output2" in out else [])


def credman(ctap, preview):
    cp = ClientPin(ctap)
    if preview:
        # As a FIDO_2_1_PRE platform: legacy PIN token, command 0x41.
        ctap.info.options.pop("credMgmt", None)
        cp._supports_permissions = False
        token = cp.get_pin_token(pin)
    else:
        token = cp.get_pin_token(pin, ClientPin.PERMISSION.CREDENTIAL_MGMT)
    cm = CredentialManagement(ctap, cp.protocol, token)
    meta = cm.get_metadata()
    rps = cm.enumerate_rps()
    rp_hash = rps[0][CredentialManagement.RESULT.RP_ID_HASH]
    creds = cm.enumerate_creds(rp_hash)
    return cm, rp_hash, {
        "existing": meta[CredentialManagement.RESULT.EXISTING_CRED_COUNT],
        "remaining": meta[CredentialManagement.RESULT.MAX_REMAINING_COUNT],
        "rps": [r[CredentialManagement.RESULT.RP]["id"] for r in rps],
        "users": [c[CredentialManagement.RESULT.USER]["name"] for c in creds],
        "cred_protect": [c.get(CredentialManagement.RESULT.CRED_PROTECT) for c in creds],
        "creds": creds,
    }


def scenario_info():
    i = Ctap2(dev).info
    return {"versions": i.versions, "extensions": i.extensions, "options": i.options,
            "aaguid": bytes(i.aaguid).hex(), "max_msg_size": i.max_msg_size,
            "pin_protocols": i.pin_uv_protocols, "max_creds_in_list": i.max_creds_in_list,
            "max_cred_id_length": i.max_cred_id_length, "transports": i.transports,
            "algorithms": i.algorithms, "min_pin_length": i.min_pin_length,
            "firmware_version": i.firmware_version, "remaining_disc_creds": i.remaining_disc_creds}


def scenario_accounts():
    ctap = Ctap2(dev)
    ClientPin(ctap).set_pin(pin)
    client = Fido2Client(dev, ORIGIN)
    out = {}
    alice = {"id": b"user-alice", "name": "alice", "displayName": "Alice"}
    bob = {"id": b"user-bob", "name": "bob", "displayName": "Bob"}
    ad, ext = register(client, alice, {"hmacCreateSecret": True,
                                      "credentialProtectionPolicy": CredProtectExtension.POLICY.OPTIONAL_WITH_LIST})
    out["created_ext"] = {k: v for k, v in ext.items()}
    alice_id = ad.credential_data.credential_id
    ad, _ = register(client, bob, {"hmacCreateSecret": True})
    bob_id = ad.credential_data.credential_id

    got, sel = sign_in(client)
    out["discovered"] = [a.user["name"] for a in sel.get_assertions()]
    out["number_of_credentials"] = sel.get_assertions()[0].number_of_credentials
    out["user_handles"] = [r.user_handle.decode() for r in got]
    out["counters"] = [a.auth_data.counter for a in sel.get_assertions()]

    salt1, salt2 = os.urandom(32), os.urandom(32)
    out["hmac_first"] = hmac_outputs(client, alice_id, salt1, salt2)
    out["hmac_again"] = hmac_outputs(client, alice_id, salt1, salt2)
    out["hmac_other_salt"] = hmac_outputs(client, alice_id, salt2)
    out["hmac_bob"] = hmac_outputs(client, bob_id, salt1)
    out["prf_first"] = hmac_outputs(client, alice_id, prf_salt(b"keyfleet disk key"))
    out["prf_again"] = hmac_outputs(client, alice_id, prf_salt(b"keyfleet disk key"))

    cm, rp_hash, out["credman"] = credman(ctap, preview=False)
    bob_cred = [c for c in out["credman"].pop("creds") if c[CredentialManagement.RESULT.USER]["name"] == "bob"][0]
    cm.update_user_info(bob_cred[CredentialManagement.RESULT.CREDENTIAL_ID],
                        {"id": b"user-bob", "name": "robert", "displayName": "Robert"})
    try:
        cm.update_user_info(bob_cred[CredentialManagement.RESULT.CREDENTIAL_ID], {"id": b"user-eve", "name": "eve"})
    except CtapError as e:
        out["rename_other_user"] = err(e)
    cm2, _, out["credman_preview"] = credman(ctap, preview=True)
    out["credman_preview"].pop("creds")
    cm2.delete_cred(bob_cred[CredentialManagement.RESULT.CREDENTIAL_ID])
    out["after_delete"] = [c[CredentialManagement.RESULT.USER]["name"] for c in cm2.enumerate_creds(rp_hash)]
    ctap.info.options["credMgmt"] = True
    client = Fido2Client(dev, ORIGIN)
    got, sel = sign_in(client)
    out["discovered_after_delete"] = [a.user["name"] for a in sel.get_assertions()]
    return out


def wrong_pins(cp, n):
    out = []
    for _ in range(n):
        try:
            cp.get_pin_token("00000000", ClientPin.PERMISSION.GET_ASSERTION, RP_ID)
            out.append("OK")
        except CtapError as e:
            out.append(err(e))
    return out


def scenario_pinblock():
    ctap = Ctap2(dev)
    cp = ClientPin(ctap)
    cp.set_pin(pin)
    out = {"wrong": wrong_pins(cp, 3)}
    try:
        cp.get_pin_token(pin, ClientPin.PERMISSION.GET_ASSERTION, RP_ID)
        out["right"] = "OK"
    except CtapError as e:
        out["right"] = err(e)
    out["retries"], out["power_cycle"] = cp.get_pin_retries()
    return out


def scenario_pinafter():
    cp = ClientPin(Ctap2(dev))
    cp.get_pin_token(pin, ClientPin.PERMISSION.GET_ASSERTION, RP_ID)
    retries, power_cycle = cp.get_pin_retries()
    return {"right": "OK", "retries": retries, "power_cycle": power_cycle}


def scenario_reset():
    ctap = Ctap2(dev)
    out = {"before": {"client_pin": ctap.info.options.get("clientPin"),
                      "remaining_disc_creds": ctap.info.remaining_disc_creds}}
    try:
        ctap.reset()
        out["reset"] = "OK"
    except CtapError as e:
        out["reset"] = err(e)
        return out
    info = ctap.get_info()
    out["after"] = {"client_pin": info.options.get("clientPin"), "remaining_disc_creds": info.remaining_disc_creds}
    try:
        ctap.get_assertion(RP_ID, os.urandom(32))
        out["sign_in"] = "OK"
    except CtapError as e:
        out["sign_in"] = err(e)
    return out


def jsonable(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


print(json.dumps(jsonable(globals()["scenario_" + scenario]())))
