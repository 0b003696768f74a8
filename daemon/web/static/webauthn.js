// keyfleet pages: the WebAuthn ceremonies (sign-in, step-up, first
// enrolment, registering a key). No inline script: the CSP allows only
// this file. Every request carries the session's CSRF token.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf"]').content;
  const live = (msg) => { const el = document.getElementById("live"); if (el) el.textContent = msg; };

  const b64u = {
    decode(s) {
      const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
      return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      let s = "";
      new Uint8Array(buf).forEach((x) => { s += String.fromCharCode(x); });
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  // Options arrive as WebAuthn's JSON forms (base64url binary fields).
  function creationOptions(o) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    }
    const out = Object.assign({}, o, { challenge: b64u.decode(o.challenge), user: Object.assign({}, o.user, { id: b64u.decode(o.user.id) }) });
    out.excludeCredentials = (o.excludeCredentials || []).map((c) => Object.assign({}, c, { id: b64u.decode(c.id) }));
    return out;
  }
  function requestOptions(o) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    }
    const out = Object.assign({}, o, { challenge: b64u.decode(o.challenge) });
    out.allowCredentials = (o.allowCredentials || []).map((c) => Object.assign({}, c, { id: b64u.decode(c.id) }));
    return out;
  }
  function credentialJSON(c) {
    if (typeof c.toJSON === "function") return c.toJSON();
    const r = c.response, out = { id: c.id, rawId: b64u.encode(c.rawId), type: c.type, clientExtensionResults: c.getClientExtensionResults(), response: { clientDataJSON: b64u.encode(r.clientDataJSON) } };
    if (r.attestationObject) { out.response.attestationObject = b64u.encode(r.attestationObject); out.response.transports = r.getTransports ? r.getTransports() : []; }
    if (r.authenticatorData) { out.response.authenticatorData = b64u.encode(r.authenticatorData); out.response.signature = b64u.encode(r.signature); if (r.userHandle) out.response.userHandle = b64u.encode(r.userHandle); }
    if (c.authenticatorAttachment) out.authenticatorAttachment = c.authenticatorAttachment;
    return out;
  }

  async function post(url, body, proof) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf() };
    if (proof) headers["Keyfleet-Proof"] = b64u.encode(new TextEncoder().encode(JSON.stringify(proof)));
    const res = await fetch(url, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body || {}) });
    const data = await res.json().catch(() => ({ error: "The server did not answer. Try again." }));
    if (!res.ok) throw new Error(data.error || "Refused.");
    return data;
  }

  // verify runs begin → navigator.credentials.get → finish. With several
  // keys that share one challenge, one request lists them all and the key
  // that answers picks the factor; otherwise the user picks a key (each
  // has its own challenge).
  async function verify(prefix, body, chooser) {
    const begun = await post(prefix + "/begin", body);
    if (begun.options && begun.credentials) {
      live("Touch one of your security keys.");
      const cred = await navigator.credentials.get({ publicKey: requestOptions(begun.options) });
      const factor = begun.credentials[cred.id];
      if (!factor) throw new Error("That key is not registered to you. Try another key.");
      return post(prefix + "/finish", { factor_id: factor, credential: credentialJSON(cred) });
    }
    let f = begun.factors[0];
    if (begun.factors.length > 1 && chooser) f = await choose(chooser, begun.factors);
    live("Touch your security key (" + (f.label || "key") + ").");
    const cred = await navigator.credentials.get({ publicKey: requestOptions(f.options) });
    return post(prefix + "/finish", { factor_id: f.factor_id, credential: credentialJSON(cred) });
  }

  function choose(box, factors) {
    return new Promise((resolve) => {
      box.hidden = false;
      box.textContent = "";
      const p = document.createElement("p");
      p.textContent = "Which key do you have with you?";
      box.appendChild(p);
      factors.forEach((f) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = f.label || f.factor_id;
        b.addEventListener("click", () => { box.hidden = true; resolve(f); });
        box.appendChild(b);
      });
      box.querySelector("button").focus();
    });
  }

  async function register(prefix, body, label) {
    const begun = await post(prefix + "/begin", body);
    live("Touch your security key to register it.");
    const cred = await navigator.credentials.create({ publicKey: creationOptions(begun.options) });
    return post(prefix + "/finish", { label: label, credential: credentialJSON(cred) });
  }

  // prove asks for a challenge bound to one action (approving this
  // request, applying this document…) and answers it with the user's key;
  // the answer goes with that action. The key's signature covers the
  // action, so it allows nothing else.
  async function prove(action, subject, request, form) {
    const begun = await post("/proof/begin", { action: action, subject: subject || "", request: request });
    if (!begun.factors.length && begun.code_factors && begun.code_factors.length) return codeProof(begun, form);
    live("Touch your security key to confirm: " + begun.summary);
    let factor, cred;
    if (begun.options && begun.credentials) {
      cred = await navigator.credentials.get({ publicKey: requestOptions(begun.options) });
      factor = begun.credentials[cred.id];
      if (!factor) throw new Error("That key is not registered to you. Try another key.");
    } else {
      const f = begun.factors[0];
      cred = await navigator.credentials.get({ publicKey: requestOptions(f.options) });
      factor = f.factor_id;
    }
    return { id: begun.id, factor_id: factor, response: credentialJSON(cred) };
  }

  // codeProof answers a proof with the code of an authenticator app that
  // the person typed in the form (proof_code; proof_factor picks the app
  // when they have several): for people with no security key.
  function codeProof(begun, form) {
    const code = form && form.elements.proof_code ? form.elements.proof_code.value.trim() : "";
    if (!code) throw new Error("Type the code your authenticator app shows, then press the button again.");
    const pick = form.elements.proof_factor ? form.elements.proof_factor.value : "";
    const f = begun.code_factors.find((x) => x.factor_id === pick) || begun.code_factors[0];
    return { id: begun.id, factor_id: f.factor_id, response: { code: code } };
  }

  // requestOf builds the body an action will send from its form: the
  // form's data-request JSON, plus the fields data-fields names
  // ("name", "name:bool", "name:int1" = a number, 1 when absent).
  function requestOf(form) {
    const out = form.dataset.request ? JSON.parse(form.dataset.request) : {};
    (form.dataset.fields || "").split(",").filter(Boolean).forEach((spec) => {
      const [name, type] = spec.split(":");
      const el = form.elements[name];
      if (type === "bool") out[name] = !!(el && el.checked);
      else if (type === "int1") out[name] = el ? parseInt(el.value, 10) || 1 : 1;
      else if (el && el.value !== "") out[name] = el.value;
    });
    return out;
  }

  async function stepUp() {
    await verify("/stepup", {});
    document.querySelector('meta[name="stepped-up"]').content = "yes";
  }

  const flows = {
    signin: (form) => verify("/signin", { username: form.username.value.trim() }, form.querySelector(".choices")),
    welcome: (form) => register("/welcome", { code: form.code.value.trim() }, form.label.value),
    register: async (form) => {
      const proof = await prove("factor.add", form.dataset.subject, requestOf(form), form);
      const begun = await post("/me/keys/begin", {}, proof);
      live("Touch your new security key to register it.");
      const cred = await navigator.credentials.create({ publicKey: creationOptions(begun.options) });
      return post("/me/keys/finish", { label: form.label.value, credential: credentialJSON(cred) });
    },
  };

  // showCodes shows recovery codes that came with a first key, once, in
  // place of the form, with a link onwards; nothing keeps them.
  function showCodes(form, codes, next) {
    const box = document.getElementById("once");
    if (!box) return false;
    const list = box.querySelector("ol");
    codes.forEach((c) => { const li = document.createElement("li"); li.textContent = c; list.appendChild(li); });
    box.querySelector("a").href = next;
    form.hidden = true;
    box.hidden = false;
    box.querySelector("h2").focus();
    live("");
    return true;
  }

  function guard(form, run) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      try {
        const out = await run(form);
        if (out && out.recovery_codes && out.recovery_codes.length && showCodes(form, out.recovery_codes, out.redirect)) return;
        if (out && out.redirect) window.location.assign(out.redirect);
      } catch (err) {
        live(err && err.name === "NotAllowedError" ? "The key did not answer or the request was cancelled. Try again." : (err.message || String(err)));
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  // checkAsTyped posts the text to its check URL a moment after typing
  // stops and shows the problems with their lines, or the changes.
  function checkAsTyped(area) {
    const out = document.getElementById(area.getAttribute("aria-describedby"));
    let timer = 0, seq = 0;
    const run = async () => {
      const mine = ++seq;
      try {
        const r = await post(area.dataset.check, { document: area.value.replace(/\r\n/g, "\n") });
        if (mine !== seq) return;
        render(out, r);
      } catch (err) {
        out.textContent = "The document could not be checked: " + (err.message || err);
      }
    };
    area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 400); });
    run();
  }

  function render(out, r) {
    out.textContent = "";
    out.className = "check-result " + (r.ok ? "ok" : "error");
    const p = document.createElement("p");
    if (!r.ok) {
      p.textContent = r.problems.length === 1 ? "1 problem:" : r.problems.length + " problems:";
    } else if (!r.changes.length) {
      p.textContent = "No problems. It changes no requirement of the current version.";
    } else {
      p.textContent = "No problems. Against the current version it changes " + r.changes.length + (r.changes.length === 1 ? " requirement" : " requirements") +
        (r.weakens ? "; it weakens the policy, so a second person must approve it." : ".");
    }
    out.appendChild(p);
    const ul = document.createElement("ul");
    (r.ok ? r.changes.map((c) => c.message) : r.problems.map((x) => (x.line ? "line " + x.line + ": " : "") + (x.field ? x.field + ": " : "") + x.message))
      .forEach((t) => { const li = document.createElement("li"); li.textContent = t; ul.appendChild(li); });
    if (ul.childNodes.length) out.appendChild(ul);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-webauthn]").forEach((form) => guard(form, flows[form.dataset.webauthn]));
    // Actions bound to a proof: answer a challenge for this one action
    // with the key, then submit the form with the answer.
    document.querySelectorAll("form[data-proof]").forEach((form) => {
      form.addEventListener("submit", async (ev) => {
        if (form.elements.proof.value) return;
        ev.preventDefault();
        if (!form.reportValidity()) return;
        try {
          const answer = await prove(form.dataset.proof, form.dataset.subject, requestOf(form), form);
          form.elements.proof.value = JSON.stringify(answer);
          form.submit();
        } catch (err) {
          live(err && err.name === "NotAllowedError" ? "The key did not answer or the request was cancelled. Try again." : "Confirmation with your key failed: " + (err.message || err));
        }
      });
    });
    // The policy editor checks the document as it is typed.
    document.querySelectorAll("textarea[data-check]").forEach(checkAsTyped);
    // Sensitive forms: confirm with the key first, then submit for real.
    document.querySelectorAll("form.needs-stepup").forEach((form) => {
      form.addEventListener("submit", async (ev) => {
        if (document.querySelector('meta[name="stepped-up"]').content === "yes") return;
        ev.preventDefault();
        try { await stepUp(); form.submit(); } catch (err) { live("Confirmation with your key failed: " + (err.message || err)); }
      });
    });
  });
})();
