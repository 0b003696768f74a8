// keyfleet push companion: the service worker that makes /push/ an
// installable app. Nothing is cached (every push is live): pages come
// from the network, and a short page says so when keyfleet cannot be
// reached.
"use strict";
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  if (event.request.mode !== "navigate") return;
  event.respondWith(fetch(event.request).catch(() => new Response(
    "<!doctype html><title>keyfleet push</title><p>keyfleet cannot be reached. Pushes arrive again when it can.</p>",
    { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } })));
});
