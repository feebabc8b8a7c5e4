// The console's session and its calls to the API. The console token lives in this tab's session storage, never in
// local storage: it is gone when the tab closes, and lasts 15 minutes anyway. A call the server refuses for its
// token ends the session, which the page hears of through `whenSessionEnds`.

import { sentence } from "./console-util.js";

const SESSION_KEY = "synckit.console.session";

let session = null; // { token, expires, email, user_id }
let ended = () => {};

/** The session signed in, or null. */
export function currentSession() {
  return session;
}

/** The session this tab kept, if it is still good. */
export function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    if (saved && saved.token && saved.expires > Date.now()) {
      session = saved;
      return saved;
    }
  } catch {
    // Nothing usable kept.
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

/** Signs in with `next`, or out with null. */
export function saveSession(next) {
  session = next;
  if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(SESSION_KEY);
}

/** `callback` runs when the server refuses the token (expired, or revoked by a password change). */
export function whenSessionEnds(callback) {
  ended = callback;
}

/** A refusal: the HTTP status (0 when the server could not be reached), the API's error code and its message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The JSON answer of `method path`, sent with `body` as JSON, and with the console token unless `open`. */
export async function api(method, path, body, { open = false } = {}) {
  if (!open && !session) {
    ended();
    throw new ApiError(401, "signed_out", "Sign in to go on.");
  }
  const headers = {};
  if (!open) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "unreachable", "The server cannot be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (answer && answer.error) || {};
    const message = error.message ? sentence(error.message) : `The server answered ${response.status}.`;
    if (response.status === 401 && !open) ended();
    throw new ApiError(response.status, error.code || `http_${response.status}`, message);
  }
  return answer;
}
