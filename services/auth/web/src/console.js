// The developer console: sign in (the login key derived in this browser by `loginkey.js`, so the password never
// leaves it), then list, create and manage the account's apps through `/api/apps` with the console token.
//
// - this file: signing in and out, the list of apps, creating one, showing an API key once, and one app's redirect
//   URIs, key rotation and deletion;
// - `console-plan.js`: the app's plan and live quotes; `console-usage.js` and `console-chart.js`: its usage;
// - `console-api.js`: the session and the API calls; `console-util.js`: what they all use.
//
// When the server refuses the token, the page asks to sign in again and keeps everything typed meanwhile.
// Everything the server says is put in the page as text (`textContent`), never as markup.

import { api, currentSession, loadSession, saveSession, whenSessionEnds } from "./console-api.js";
import { showPlanOf } from "./console-plan.js";
import { showUsageOf } from "./console-usage.js";
import { $, formatDate, say, setBusy, show } from "./console-util.js";

const { derive, accountSalt, newSalt, base64 } = window.SyncKitLoginKey;

// ---- Signing in -----------------------------------------------------------------------------------------------------

const signinView = $("signin-view");
const consoleView = $("console-view");
const signinForm = $("signin");
const email = $("email");
const password = $("password");
const repeat = $("repeat");
const signinSubmit = $("signin-submit");
const signinError = $("signin-error");
let mode = "sign_in";
let signingIn = false;

function setMode(next) {
  mode = next;
  const signUp = next === "sign_up";
  $("signin-heading").textContent = signUp ? "Create a SyncKit account" : "Sign in to the console";
  signinSubmit.textContent = signUp ? "Create account" : "Sign in";
  password.autocomplete = signUp ? "new-password" : "current-password";
  show($("repeat-row"), signUp);
  $("switch-text").textContent = signUp ? "Have an account?" : "New here?";
  $("switch-button").textContent = signUp ? "Sign in instead" : "Create an account";
  say(signinError, "");
}

function showSignIn(message) {
  show($("session"), false);
  show(consoleView, false);
  show(signinView, true);
  say(signinError, message);
  (email.value ? password : email).focus();
}

/** The server refused the token (expired, or revoked by a password change): sign in again, keeping the page. */
function sessionEnded() {
  const session = currentSession();
  const hadSession = session !== null;
  // The same account, most likely: its email is filled in (after a reload, the form had none).
  if (hadSession && !email.value) email.value = session.email;
  saveSession(null);
  showSignIn(
    hadSession
      ? "Your console session ended (sessions last 15 minutes). Sign in again to go on: nothing you typed is lost."
      : "",
  );
}

signinForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (signingIn) return;
  say(signinError, "");
  if (!email.checkValidity() || !email.value.trim()) {
    say(signinError, "Enter your email address, like name@example.com.");
    email.focus();
    return;
  }
  if (!password.value) {
    say(signinError, "Enter your password.");
    password.focus();
    return;
  }
  if (mode === "sign_up" && password.value !== repeat.value) {
    say(signinError, "The two passwords differ.");
    repeat.focus();
    return;
  }
  signingIn = true;
  setBusy(signinSubmit, true);
  show($("signin-progress"), true);
  try {
    const address = email.value.trim();
    const salt = mode === "sign_up" ? newSalt() : await accountSalt(address);
    const loginKey = base64(await derive(password.value, salt));
    if (mode === "sign_up") {
      await api("POST", "/api/accounts/register", { email: address, salt: base64(salt), login_key: loginKey }, {
        open: true,
      });
      // The account exists from here on: should signing in fail, trying again signs in rather than up.
      setMode("sign_in");
    }
    const signedIn = await api("POST", "/api/accounts/console-auth", { email: address, login_key: loginKey }, {
      open: true,
    });
    password.value = "";
    repeat.value = "";
    const previous = consoleView.dataset.user;
    saveSession({
      token: signedIn.token,
      expires: Date.parse(signedIn.expires_at),
      email: address,
      user_id: signedIn.user_id,
    });
    setMode("sign_in");
    await enterConsole(previous === signedIn.user_id);
  } catch (err) {
    say(signinError, err.message);
  } finally {
    signingIn = false;
    setBusy(signinSubmit, false);
    show($("signin-progress"), false);
  }
});

$("switch-button").addEventListener("click", () => setMode(mode === "sign_up" ? "sign_in" : "sign_up"));

$("sign-out").addEventListener("click", () => {
  saveSession(null);
  resetConsole();
  showSignIn("");
});

// ---- The console ----------------------------------------------------------------------------------------------------

let apps = [];
let selected = null; // the app shown
const errorBox = $("error");
const notice = $("notice");

/** Shows the console; `same` when the account signing in is the one whose page this is (keep what was typed). */
async function enterConsole(same) {
  if (!same) resetConsole();
  const session = currentSession();
  consoleView.dataset.user = session.user_id;
  $("session-email").textContent = session.email;
  show($("session"), true);
  show(signinView, false);
  show(consoleView, true);
  await loadApps();
}

/** Forgets everything of the account before. */
function resetConsole() {
  apps = [];
  selected = null;
  delete consoleView.dataset.user;
  hideKey();
  for (const id of ["create-name", "create-uris", "uris", "delete-name"]) $(id).value = "";
  for (const id of ["error", "notice", "create-error", "uris-error", "uris-status", "rotate-error"]) say($(id), "");
  showPlanOf(null);
  showUsageOf(null);
  show($("app-panel"), false);
  show($("create-panel"), false);
  renderAppList();
}

async function loadApps() {
  say(errorBox, "");
  try {
    apps = (await api("GET", "/api/apps")).apps;
  } catch (err) {
    if (err.status !== 401) say(errorBox, `Your apps could not be loaded. ${err.message}`);
    return;
  }
  renderAppList();
  const wanted = selected ? selected.app_id : new URLSearchParams(location.hash.slice(1)).get("app");
  const app = apps.find((a) => a.app_id === wanted);
  if (app) selectApp(app);
  else if (!$("create-panel").hidden) return;
  else if (apps.length) selectApp(apps[0]);
  else openCreate();
}

function renderAppList() {
  const list = $("app-list");
  list.replaceChildren();
  for (const app of apps) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = app.name;
    button.dataset.appId = app.app_id;
    button.setAttribute("aria-current", selected && selected.app_id === app.app_id ? "true" : "false");
    button.addEventListener("click", () => selectApp(app));
    item.append(button);
    list.append(item);
  }
  show($("no-apps"), apps.length === 0);
}

// ---- Showing an API key once ----------------------------------------------------------------------------------------

let keyShown = false;

function showKey(appName, key) {
  $("key-app").textContent = appName;
  $("key-value").textContent = key;
  $("key-copied").textContent = "";
  show($("key-panel"), true);
  keyShown = true;
  $("key-panel").scrollIntoView({ block: "nearest" });
  $("key-copy").focus();
}

function hideKey() {
  $("key-value").textContent = "";
  show($("key-panel"), false);
  keyShown = false;
}

$("key-copy").addEventListener("click", async () => {
  const key = $("key-value").textContent;
  try {
    await navigator.clipboard.writeText(key);
    $("key-copied").textContent = "Copied to the clipboard.";
  } catch {
    // No clipboard here (a page not served over https, say): select the key for the person to copy.
    const range = document.createRange();
    range.selectNodeContents($("key-value"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    $("key-copied").textContent = "Selected: copy it with your keyboard or menu.";
  }
});

$("key-done").addEventListener("click", () => {
  hideKey();
  if (selected) $("app-name").focus();
});

// Leaving the page while a key is shown would lose it for good.
window.addEventListener("beforeunload", (event) => {
  if (keyShown) event.preventDefault();
});

// ---- Creating an app ------------------------------------------------------------------------------------------------

function openCreate() {
  selected = null;
  renderAppList();
  showPlanOf(null);
  showUsageOf(null);
  show($("app-panel"), false);
  show($("create-panel"), true);
  say($("create-error"), "");
  $("create-name").focus();
}

/** The redirect URIs typed one per line, without blank lines or surrounding spaces. */
function linesOf(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line);
}

/** A refusal of redirect URIs, in the console's words (the server names the list's field and index). */
function urisMessage(err) {
  return err.message.replace(/^Redirect_uris\[\d+\] /, "The redirect URI ").replace(/^Redirect_uris /, "");
}

$("new-app").addEventListener("click", openCreate);
$("create-cancel").addEventListener("click", () => {
  show($("create-panel"), false);
  if (apps.length) selectApp(apps[0]);
});

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("create-name").value.trim();
  const submit = $("create-submit");
  say($("create-error"), "");
  if (!name) {
    say($("create-error"), "Give the app a name: its users see it when they sign in through the browser.");
    $("create-name").focus();
    return;
  }
  setBusy(submit, true);
  try {
    const created = await api("POST", "/api/apps", { name, redirect_uris: linesOf($("create-uris").value) });
    const { api_key: apiKey, ...app } = created;
    apps.push(app);
    $("create-name").value = "";
    $("create-uris").value = "";
    show($("create-panel"), false);
    selectApp(app);
    showKey(app.name, apiKey);
  } catch (err) {
    if (err.status !== 401) {
      say($("create-error"), err.code === "invalid_redirect_uri" ? urisMessage(err) : err.message);
    }
  } finally {
    setBusy(submit, false);
  }
});

// ---- One app --------------------------------------------------------------------------------------------------------

/** The redirect URIs as last saved, to tell whether the text area holds unsaved edits. */
let savedUris = "";

function selectApp(app) {
  const same = selected && selected.app_id === app.app_id;
  selected = app;
  history.replaceState(null, "", `#app=${app.app_id}`);
  renderAppList();
  say(errorBox, "");
  say(notice, "");
  show($("create-panel"), false);
  show($("app-panel"), true);
  $("app-name").textContent = app.name;
  $("app-name").tabIndex = -1;
  $("app-id").textContent = app.app_id;
  $("app-client-id").textContent = app.client_id;
  $("app-created").textContent = formatDate(app.created_at);
  $("delete-app-name").textContent = app.name;
  const uris = app.redirect_uris.join("\n");
  // What the person typed and did not save stays, when it is the same app shown again.
  if (!same || $("uris").value === savedUris) $("uris").value = uris;
  savedUris = uris;
  if (!same) {
    for (const id of ["uris-error", "uris-status", "rotate-error", "delete-error"]) say($(id), "");
    show($("rotate-confirm"), false);
    show($("delete-confirm"), false);
    $("delete-name").value = "";
  }
  showPlanOf(app, { keepForm: same });
  showUsageOf(app);
}

// Redirect URIs.
$("uris-save").addEventListener("click", async () => {
  if (!selected) return;
  const app = selected;
  const button = $("uris-save");
  say($("uris-error"), "");
  say($("uris-status"), "");
  $("uris").removeAttribute("aria-invalid");
  setBusy(button, true);
  try {
    const updated = await api("PUT", `/api/apps/${app.app_id}/redirect-uris`, {
      redirect_uris: linesOf($("uris").value),
    });
    apps = apps.map((a) => (a.app_id === updated.app_id ? updated : a));
    if (selected && selected.app_id === updated.app_id) {
      selected = updated;
      savedUris = updated.redirect_uris.join("\n");
      $("uris").value = savedUris;
      const n = updated.redirect_uris.length;
      say($("uris-status"), n ? `Saved: ${n} redirect URI${n === 1 ? "" : "s"}.` : "Saved: no redirect URIs.");
    }
  } catch (err) {
    if (err.status !== 401) {
      say($("uris-error"), err.code === "invalid_redirect_uri" ? urisMessage(err) : err.message);
      $("uris").setAttribute("aria-invalid", "true");
    }
  } finally {
    setBusy(button, false);
  }
});

// Rotating the API key.
$("rotate").addEventListener("click", () => {
  say($("rotate-error"), "");
  show($("rotate-confirm"), true);
  $("rotate-no").focus();
});
$("rotate-no").addEventListener("click", () => {
  show($("rotate-confirm"), false);
  $("rotate").focus();
});
$("rotate-yes").addEventListener("click", async () => {
  if (!selected) return;
  const app = selected;
  setBusy($("rotate-yes"), true);
  try {
    const rotated = await api("POST", `/api/apps/${app.app_id}/rotate-key`);
    show($("rotate-confirm"), false);
    showKey(app.name, rotated.api_key);
  } catch (err) {
    if (err.status !== 401) say($("rotate-error"), err.message);
  } finally {
    setBusy($("rotate-yes"), false);
  }
});

// Deleting the app.
$("delete").addEventListener("click", () => {
  say($("delete-error"), "");
  show($("delete-confirm"), true);
  $("delete-name").focus();
});
$("delete-no").addEventListener("click", () => {
  show($("delete-confirm"), false);
  $("delete-name").value = "";
});
$("delete-confirm").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!selected) return;
  const app = selected;
  say($("delete-error"), "");
  if ($("delete-name").value.trim() !== app.name) {
    say($("delete-error"), `Type ${app.name} exactly to delete it.`);
    $("delete-name").focus();
    return;
  }
  setBusy($("delete-yes"), true);
  try {
    await api("DELETE", `/api/apps/${app.app_id}`);
    apps = apps.filter((a) => a.app_id !== app.app_id);
    selected = null;
    history.replaceState(null, "", "#");
    show($("delete-confirm"), false);
    $("delete-name").value = "";
    show($("app-panel"), false);
    renderAppList();
    if (apps.length) selectApp(apps[0]);
    else openCreate();
    say(notice, `${app.name} is deleted, with everything stored under it.`);
  } catch (err) {
    if (err.status !== 401) say($("delete-error"), err.message);
  } finally {
    setBusy($("delete-yes"), false);
  }
});

// ---- Start ----------------------------------------------------------------------------------------------------------

whenSessionEnds(sessionEnded);
setMode("sign_in");
if (loadSession()) enterConsole(false);
else showSignIn("");
