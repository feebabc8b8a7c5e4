// Derives the login key off the page's thread: Argon2id(password, salt, 64 MiB, 3 iterations, parallelism 1,
// 32 bytes), exactly as the SDK does (docs/protocol.md, "Accounts"). hash-wasm's Argon2 build defines `hashwasm`.
"use strict";

importScripts("/oauth/assets/argon2.js");

const LOGIN_KDF = { memorySize: 65536, iterations: 3, parallelism: 1, hashLength: 32 };

self.onmessage = async (event) => {
  const { password, salt } = event.data;
  try {
    const key = await self.hashwasm.argon2id({ password, salt, ...LOGIN_KDF, outputType: "binary" });
    self.postMessage({ key });
  } catch (err) {
    self.postMessage({ error: String(err && err.message ? err.message : err) });
  }
};
