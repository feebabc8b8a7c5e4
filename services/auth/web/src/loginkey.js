// The login-key derivation of the server's pages (the sign-in page and the console), as `SyncKitLoginKey`: ask the
// server for the account's salt (pre-login), refuse any derivation but the protocol's, and derive the key from the
// password in a Web Worker (`worker.js`), so that the password never leaves the page and the page stays responsive
// while Argon2id runs.
"use strict";

(() => {
  const LOGIN_KDF = { algorithm: "argon2id", memory_kib: 65536, iterations: 3, parallelism: 1 };

  function base64(bytes) {
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }

  function unbase64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  /** The login key of `password` with `salt` (bytes), as bytes. */
  function derive(password, salt) {
    return new Promise((resolve, reject) => {
      const worker = new Worker("/oauth/assets/worker.js");
      worker.onmessage = (event) => {
        worker.terminate();
        if (event.data.error) reject(new Error(`The key could not be derived: ${event.data.error}`));
        else resolve(event.data.key);
      };
      worker.onerror = (event) => {
        worker.terminate();
        reject(new Error(`The key could not be derived: ${event.message || "the worker failed"}`));
      };
      worker.postMessage({ password, salt });
    });
  }

  /** The salt (bytes) of the account of `email`, from the server's pre-login. */
  async function accountSalt(email) {
    let response;
    try {
      response = await fetch("/api/accounts/prelogin", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email }),
        credentials: "omit",
      });
    } catch {
      throw new Error("The server cannot be reached. Check your connection and try again.");
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error((body && body.error && body.error.message) || `The server answered ${response.status}.`);
    }
    const kdf = body.kdf || {};
    if (Object.keys(LOGIN_KDF).some((k) => kdf[k] !== LOGIN_KDF[k])) {
      // The derivation is fixed by the protocol: a server asking for a weaker one is refused.
      throw new Error("The server asked for a different password derivation than SyncKit's; nothing was sent.");
    }
    return unbase64(body.salt);
  }

  /** A fresh salt for a new account. */
  function newSalt() {
    return crypto.getRandomValues(new Uint8Array(32));
  }

  window.SyncKitLoginKey = Object.freeze({ derive, accountSalt, newSalt, base64, unbase64 });
})();
