// keyfleet push companion (the /me/push and /push/ pages). It keeps a
// non-extractable WebCrypto P-256 key in IndexedDB, enrols it (the first
// signed answer), keeps a stream open to keyfleetd authenticated by that
// key (every request signs its method, path and time), shows each push
// with its three numbers, and signs the answer. The formats are those of
// plugins/push (wire.go); nothing here is trusted by keyfleetd without
// the key's signature.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const enc = new TextEncoder();
  const b64u = (buf) => {
    let s = "";
    new Uint8Array(buf).forEach((x) => { s += String.fromCharCode(x); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const status = (msg) => { const el = $("companion-status"); if (el) el.textContent = msg; };
  let waiting = "Waiting for sign-ins."; // what the status says when nothing asks

  // The device record: {factorId, user, label, key (CryptoKey, private,
  // not extractable)}, in IndexedDB "keyfleet-push".
  function db() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open("keyfleet-push", 1);
      req.onupgradeneeded = () => req.result.createObjectStore("device");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  async function store(fn, mode) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const tx = d.transaction("device", mode || "readonly");
      const req = fn(tx.objectStore("device"));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
    });
  }
  const loadDevice = () => store((s) => s.get("device"));
  const saveDevice = (dev) => store((s) => s.put(dev, "device"), "readwrite");
  const forgetDevice = () => store((s) => s.delete("device"), "readwrite");

  async function sign(key, text) {
    return b64u(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, enc.encode(text)));
  }

  // Each signed request carries a later time than the one before.
  let lastAuth = 0;
  async function deviceHeader(dev, method, path) {
    const t = Math.max(Date.now(), lastAuth + 1);
    lastAuth = t;
    const sig = await sign(dev.key, ["keyfleet-push-device/v1", method, path, dev.factorId, String(t)].join("\n"));
    return "factor=" + dev.factorId + ", time=" + t + ", signature=" + sig;
  }

  // enrol makes the key, signs the enrolment's nonce with it and
  // confirms the enrolment: the first signed answer.
  async function enrol(box) {
    status("Making this browser's push key…");
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const pub = b64u(await crypto.subtle.exportKey("raw", pair.publicKey));
    const name = box.dataset.label || "Web companion";
    const signature = await sign(pair.privateKey, ["keyfleet-push-enrol/v1", box.dataset.enrolment, box.dataset.nonce, pub, name].join("\n"));
    const csrf = document.querySelector('meta[name="csrf"]').content;
    const res = await fetch("/me/push/confirm", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ enrolment: box.dataset.enrolment, label: name,
        payload: { public_key: pub, device_name: name, key_protection: "non-extractable", signature: signature } }),
    });
    const out = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(out.error || "keyfleet refused the registration.");
    await saveDevice({ factorId: out.factor_id, user: out.user, label: out.label, key: pair.privateKey });
    location.replace("/me/push"); // the page again, listing the new companion
    return null;
  }

  // The prompts on screen, by verification id.
  const prompts = new Map();

  function describe(d) {
    let s = d.user;
    if (d.application) s += " is signing in to " + d.application; else s += " is signing in";
    if (d.address) s += " from " + d.address;
    return s;
  }

  function show(dev, d) {
    if (prompts.has(d.verification_id)) return;
    const box = document.createElement("section");
    box.className = "push-prompt";
    box.setAttribute("aria-label", "Sign-in request");
    box.dataset.verification = d.verification_id;
    const h = document.createElement("h3");
    h.textContent = describe(d);
    const when = document.createElement("p");
    when.className = "meta";
    when.textContent = "At " + new Date(d.time).toLocaleTimeString() + "; answer by " + new Date(d.deadline).toLocaleTimeString() + ".";
    box.append(h, when);
    const ask = document.createElement("p");
    const choices = document.createElement("div");
    choices.className = "push-choices";
    if (d.choices && d.choices.length) {
      ask.textContent = "Which number does the sign-in screen show?";
      d.choices.forEach((n) => choices.append(button(n, "Pick " + n, () => answer(dev, d, box, n, "approve"))));
    } else {
      ask.textContent = "Do you want to approve this sign-in?";
      choices.append(button("Approve", "Approve", () => answer(dev, d, box, "", "approve")));
    }
    const other = document.createElement("div");
    other.className = "push-other";
    other.append(button("Deny", "Deny", () => answer(dev, d, box, "", "deny")),
      button("This wasn't me", "This wasn't me", () => answer(dev, d, box, "", "report"), "danger"));
    const result = document.createElement("p");
    result.className = "push-result";
    result.setAttribute("role", "status");
    box.append(ask, choices, other, result);
    $("prompts").prepend(box);
    prompts.set(d.verification_id, box);
    status("A sign-in asks for you.");
  }

  function button(text, label, onclick, cls) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    if (cls) b.className = cls;
    b.addEventListener("click", onclick);
    return b;
  }

  function settle(box, msg) {
    box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    box.querySelector(".push-result").textContent = msg;
    box.dataset.done = "yes";
    if (![...prompts.values()].some((b) => b !== box && b.dataset.done !== "yes")) status(waiting);
  }

  async function answer(dev, d, box, number, decision) {
    box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    const a = { verification_id: d.verification_id, factor_id: d.factor_id, number: number, decision: decision, time: Date.now() };
    a.signature = await sign(dev.key, ["keyfleet-push-answer/v1", a.verification_id, a.factor_id, a.number, a.decision, String(a.time)].join("\n"));
    let msg;
    try {
      const res = await fetch("/v1/push/answer", { method: "POST", headers: { "Content-Type": "application/json",
        "Keyfleet-Device": await deviceHeader(dev, "POST", "/v1/push/answer") }, body: JSON.stringify(a) });
      const out = await res.json().catch(() => ({}));
      if (res.status === 410) msg = "Too late: this sign-in no longer waits.";
      else if (!res.ok) msg = "Not sent: " + (out.detail || res.status);
      else if (out.outcome === "approved") msg = "Approved: the sign-in goes ahead.";
      else if (out.outcome === "reported") msg = "Reported: the sign-in was refused, your pushes are paused until an administrator looks, and they are told.";
      else msg = "Refused: " + (out.reason || "keyfleet refused it") + ".";
    } catch (err) {
      msg = "Not sent: keyfleet cannot be reached.";
    }
    settle(box, msg);
    prompts.delete(d.verification_id);
  }

  function closed(c) {
    const box = prompts.get(c.verification_id);
    if (!box) return;
    prompts.delete(c.verification_id);
    if (box.dataset.done !== "yes") settle(box, "This sign-in no longer waits (" + c.outcome + ").");
  }

  // listen keeps the stream open, reconnecting with a growing pause; on
  // each (re)connection, prompts keyfleet no longer has are dropped.
  async function listen(dev) {
    let pause = 1000;
    for (;;) {
      const fresh = new Set();
      try {
        const res = await fetch("/v1/push/stream", { headers: { "Keyfleet-Device": await deviceHeader(dev, "GET", "/v1/push/stream") } });
        if (res.status === 401) {
          status("This browser's push key no longer works (its factor was removed or suspended). Add the browser again.");
          await forgetDevice();
          return;
        }
        if (!res.ok) throw new Error("keyfleet answered " + res.status);
        waiting = "Waiting for sign-ins of " + dev.user + " (" + dev.label + ").";
        status(waiting);
        pause = 1000;
        await readEvents(res.body, (type, data) => {
          if (type === "push") { fresh.add(data.verification_id); show(dev, data); }
          if (type === "closed") closed(data);
          if (type === "ready") prompts.forEach((box, id) => { if (!fresh.has(id)) closed({ verification_id: id, outcome: "keyfleet no longer has it" }); });
        });
      } catch (err) {
        status("Reconnecting to keyfleet…");
      }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 30000);
    }
  }

  // readEvents parses server-sent events from a fetch body.
  async function readEvents(body, fn) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", type = "", data = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === "") {
          if (type) fn(type, JSON.parse(data || "{}"));
          type = ""; data = "";
        } else if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("data: ")) data = line.slice(6);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const box = $("companion");
    if (!box) return;
    if ("serviceWorker" in navigator) navigator.serviceWorker.register("/push/sw.js", { scope: "/push/" }).catch(() => {});
    try {
      if (box.dataset.enrolment) {
        await enrol(box);
        return;
      }
      const dev = await loadDevice();
      if (!dev) {
        status("This browser is not a push companion yet." + (document.getElementById("push-add") ? " Use the button below to add it." : " Sign in to add it."));
        return;
      }
      box.dataset.factor = dev.factorId;
      listen(dev);
    } catch (err) {
      status("The push companion could not start: " + (err.message || err));
    }
  });
})();
