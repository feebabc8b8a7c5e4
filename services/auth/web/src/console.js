// The developer console: sign in (the login key derived in this browser by `loginkey.js`, so the password never
// leaves it), then list, create and manage the account's apps through `/api/apps` with the console token.
//
// The token lives in this tab's session storage, never in local storage: it is gone when the tab closes, and it
// lasts 15 minutes anyway. When the server refuses it, the page asks to sign in again and keeps everything typed
// meanwhile. Everything the server says is put in the page as text (`textContent`), never as markup.
"use strict";

(() => {
  const { derive, accountSalt, newSalt, base64 } = window.SyncKitLoginKey;
  const { drawChart, formatBytes } = window.SyncKitChart;
  const $ = (id) => document.getElementById(id);

  const SESSION_KEY = "synckit.console.session";
  const SIMPLE_BURST = 5;
  const BYTES_PER_GB = 1e9;

  // ---- Small helpers ------------------------------------------------------------------------------------------

  /** A server message (`you own no app with this id`) as a sentence. */
  function sentence(text) {
    const t = String(text).trim();
    if (!t) return t;
    const upper = t[0].toUpperCase() + t.slice(1);
    return /[.!?]$/.test(upper) ? upper : `${upper}.`;
  }

  function show(element, on) {
    element.hidden = !on;
  }

  function say(element, message) {
    element.textContent = message || "";
    element.hidden = !message;
  }

  function setBusy(button, on) {
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  function formatDate(rfc3339) {
    const date = new Date(rfc3339);
    return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString();
  }

  /** `2026-12` → `2027-01`. */
  function nextPeriod(period) {
    const [year, month] = period.split("-").map(Number);
    return month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, "0")}`;
  }

  /** The days of the period `2026-12`. */
  function daysIn(period) {
    const [year, month] = period.split("-").map(Number);
    return new Date(Date.UTC(year, month, 0)).getUTCDate();
  }

  function periodName(period) {
    const [year, month] = period.split("-").map(Number);
    const date = new Date(Date.UTC(year, month - 1, 1));
    return date.toLocaleDateString(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
  }

  /** Storage typed in GB as bytes, exactly (no floating point), or null when it is not a plain decimal. */
  function gbToBytes(text) {
    const match = /^([0-9]{1,6})(?:\.([0-9]{1,9}))?$/.exec(text);
    if (!match) return null;
    return Number(match[1]) * BYTES_PER_GB + Number((match[2] || "").padEnd(9, "0"));
  }

  /** Bytes as GB in decimal text, exactly: `50`, `0.5`. */
  function bytesToGb(bytes) {
    const whole = Math.floor(bytes / BYTES_PER_GB);
    const fraction = String(bytes % BYTES_PER_GB).padStart(9, "0").replace(/0+$/, "");
    return fraction ? `${whole}.${fraction}` : String(whole);
  }

  // ---- Session and API ----------------------------------------------------------------------------------------

  let session = null; // { token, expires, email, user_id }

  function loadSession() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY));
      if (saved && saved.token && saved.expires > Date.now()) return saved;
    } catch {
      // Nothing usable saved.
    }
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  function saveSession(next) {
    session = next;
    if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
    else sessionStorage.removeItem(SESSION_KEY);
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** The JSON answer of `method path`, sent with `body` as JSON and the console token unless `open`. */
  async function api(method, path, body, { open = false } = {}) {
    if (!open && !session) {
      sessionEnded();
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
      if (response.status === 401 && !open) sessionEnded();
      throw new ApiError(response.status, error.code || `http_${response.status}`, message);
    }
    return answer;
  }

  // ---- Signing in -----------------------------------------------------------------------------------------------

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

  // ---- The console ------------------------------------------------------------------------------------------------

  let apps = [];
  let selected = null; // the app shown
  let plan = null; // its plan, as the server last answered
  const errorBox = $("error");
  const notice = $("notice");

  /** Shows the console; `same` when the account signing in is the one whose page this is (keep what was typed). */
  async function enterConsole(same) {
    if (!same) resetConsole();
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
    plan = null;
    planFormFilled = false;
    delete consoleView.dataset.user;
    hideKey();
    for (const id of ["create-name", "create-uris", "uris", "plan-storage", "delete-name"]) $(id).value = "";
    for (const id of ["error", "notice", "create-error", "uris-error", "uris-status", "plan-error", "rotate-error"]) {
      say($(id), "");
    }
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

  // ---- Showing an API key once ------------------------------------------------------------------------------------

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

  // ---- Creating an app --------------------------------------------------------------------------------------------

  function openCreate() {
    selected = null;
    renderAppList();
    show($("app-panel"), false);
    show($("create-panel"), true);
    say($("create-error"), "");
    $("create-name").focus();
  }

  /** The redirect URIs typed one a line, without blank lines or surrounding spaces. */
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

  // ---- One app ----------------------------------------------------------------------------------------------------

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
      for (const id of ["uris-error", "uris-status", "rotate-error", "delete-error", "plan-error"]) say($(id), "");
      show($("rotate-confirm"), false);
      show($("delete-confirm"), false);
      $("delete-name").value = "";
      $("plan-storage").value = "";
      planFormFilled = false;
    }
    loadPlan();
    loadUsage();
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

  // ---- The plan -----------------------------------------------------------------------------------------------------

  const storageInput = $("plan-storage");
  const burstInput = $("plan-burst");
  const burstRange = $("plan-burst-range");
  /** Whether the form holds the plan it was filled with or what the person typed: never overwritten then. */
  let planFormFilled = false;

  function termsText(terms) {
    return (
      `${formatBytes(terms.storage_limit_bytes)} stored, up to ${formatBytes(terms.transfer_limit_bytes)} ` +
      `transferred a month (${terms.burst} × storage): $${terms.monthly_usd} a month`
    );
  }

  function renderPlan() {
    const box = $("plan-now");
    box.replaceChildren();
    const line = (text, className) => {
      const p = document.createElement("p");
      p.textContent = text;
      if (className) p.className = className;
      box.append(p);
      return p;
    };
    if (!plan) return;
    const current = plan.current
      ? `In force in ${periodName(plan.period)}: ${termsText(plan.current)}.`
      : "No plan yet: choose one below. The first plan takes effect at once.";
    line(current).id = "plan-current";
    if (plan.next) {
      const from = periodName(plan.next.from);
      const next = `From ${from}: ${termsText(plan.next)}. It lowers a limit, so it waits for this month to end.`;
      line(next, "scheduled").id = "plan-next";
    }
  }

  async function loadPlan() {
    const app = selected;
    say($("plan-load-error"), "");
    try {
      const answer = await api("GET", `/api/apps/${app.app_id}/plan`);
      if (selected !== app) return;
      plan = answer;
    } catch (err) {
      if (err.status !== 401 && selected === app) {
        say($("plan-load-error"), `The plan could not be loaded. ${err.message}`);
      }
      return;
    }
    renderPlan();
    if (!planFormFilled) {
      // Start from the plan in force (or the one waiting), else from 1 GB in Simple mode.
      const terms = plan.next || plan.current;
      storageInput.value = terms ? bytesToGb(terms.storage_limit_bytes) : "1";
      const burst = terms ? terms.burst : SIMPLE_BURST;
      setPlanMode(burst === SIMPLE_BURST ? "simple" : "builder", burst);
      planFormFilled = true;
    }
    requestQuote();
  }

  function planMode() {
    return $("mode-builder").checked ? "builder" : "simple";
  }

  function setPlanMode(next, burst) {
    $("mode-builder").checked = next === "builder";
    $("mode-simple").checked = next !== "builder";
    show($("burst-row"), next === "builder");
    if (burst !== undefined) {
      burstInput.value = String(burst);
      burstRange.value = String(burst);
    }
  }

  /** The burst the form says: Simple mode's, or Builder mode's if it is a whole number from 1 to 20, else null. */
  function chosenBurst() {
    if (planMode() === "simple") return SIMPLE_BURST;
    const text = burstInput.value.trim();
    if (!/^[0-9]{1,2}$/.test(text)) return null;
    const burst = Number(text);
    return burst >= 1 && burst <= 20 ? burst : null;
  }

  let quoteSeq = 0;
  let quoteTimer = 0;

  function quoteShows(price, detail, when) {
    $("quote-price").textContent = price;
    $("quote-detail").textContent = detail;
    $("quote-when").textContent = when;
  }

  /** When a plan of `storageBytes` at `burst` would take effect, as the server decides it. */
  function whenText(storageBytes, burst) {
    if (!plan || !plan.current) return "Takes effect at once.";
    const lowers =
      storageBytes < plan.current.storage_limit_bytes || storageBytes * burst < plan.current.transfer_limit_bytes;
    if (!lowers) return "Takes effect at once, billed from the next month.";
    const from = periodName(nextPeriod(plan.period));
    return `Lowers a limit, so it takes effect from ${from}; this month keeps the plan in force.`;
  }

  function requestQuote() {
    clearTimeout(quoteTimer);
    const seq = ++quoteSeq;
    const text = storageInput.value.trim();
    const burst = chosenBurst();
    storageInput.removeAttribute("aria-invalid");
    burstInput.removeAttribute("aria-invalid");
    if (!text) {
      quoteShows("", "Enter the GB to store to see the price.", "");
      return;
    }
    if (burst === null) {
      burstInput.setAttribute("aria-invalid", "true");
      quoteShows("", "The burst is a whole number from 1 to 20.", "");
      return;
    }
    // A short pause, so that typing `150` asks once, not three times.
    quoteTimer = setTimeout(async () => {
      const query = new URLSearchParams({ storage_gb: text, burst: String(burst) });
      try {
        const quote = await api("GET", `/api/apps/quote?${query}`);
        if (seq !== quoteSeq) return;
        const bytes = gbToBytes(text);
        quoteShows(
          `$${quote.monthly_usd} a month`,
          `${formatBytes(bytes)} stored, up to ${formatBytes(bytes * quote.burst)} transferred a month ` +
            `(${quote.burst} × storage).`,
          whenText(bytes, quote.burst),
        );
      } catch (err) {
        if (seq !== quoteSeq) return;
        if (err.code === "invalid_request") storageInput.setAttribute("aria-invalid", "true");
        quoteShows("", err.status === 401 ? "" : err.message, "");
      }
    }, 200);
  }

  storageInput.addEventListener("input", () => {
    planFormFilled = true;
    requestQuote();
  });
  burstInput.addEventListener("input", () => {
    planFormFilled = true;
    if (chosenBurst() !== null) burstRange.value = burstInput.value.trim();
    requestQuote();
  });
  burstRange.addEventListener("input", () => {
    planFormFilled = true;
    burstInput.value = burstRange.value;
    requestQuote();
  });
  for (const radio of [$("mode-simple"), $("mode-builder")]) {
    radio.addEventListener("change", () => {
      planFormFilled = true;
      setPlanMode(planMode());
      requestQuote();
    });
  }

  $("plan-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!selected) return;
    const app = selected;
    const text = storageInput.value.trim();
    const burst = chosenBurst();
    say($("plan-error"), "");
    if (!text) {
      say($("plan-error"), "Enter the GB to store.");
      storageInput.focus();
      return;
    }
    if (burst === null) {
      say($("plan-error"), "The burst is a whole number from 1 to 20.");
      burstInput.focus();
      return;
    }
    setBusy($("plan-submit"), true);
    try {
      // Storage as the text typed: the server reads it exactly.
      const answer = await api("PUT", `/api/apps/${app.app_id}/plan`, { storage_gb: text, burst });
      if (selected !== app) return;
      plan = answer;
      renderPlan();
      requestQuote();
      say(
        notice,
        plan.next
          ? `The new plan is scheduled: it takes effect from ${periodName(plan.next.from)}.`
          : `The new plan is in force: $${plan.current.monthly_usd} a month.`,
      );
      loadUsage();
    } catch (err) {
      if (err.status !== 401) say($("plan-error"), err.message);
    } finally {
      setBusy($("plan-submit"), false);
    }
  });

  // ---- Usage --------------------------------------------------------------------------------------------------------

  function percent(used, limit) {
    if (!limit) return "";
    const share = (used / limit) * 100;
    return ` (${share < 1 && share > 0 ? "under 1" : Math.round(share)}%)`;
  }

  function renderUsage(usage) {
    $("usage-period").textContent = periodName(usage.period);
    const days = daysIn(usage.period);
    const dayOf = (day) => Number(day.slice(8, 10));
    const stored = usage.days.map((d) => [dayOf(d.day), d.stored_bytes]);
    let total = 0;
    const transferred = usage.days.map((d) => [dayOf(d.day), (total += d.transfer_bytes)]);
    const noPlan = "no plan, so no limit";
    drawChart($("storage-chart"), {
      kind: "storage",
      title: "Storage",
      summary:
        usage.storage_limit_bytes === null
          ? `${formatBytes(usage.stored_bytes)} stored; ${noPlan}.`
          : `${formatBytes(usage.stored_bytes)} of ${formatBytes(usage.storage_limit_bytes)} stored` +
            `${percent(usage.stored_bytes, usage.storage_limit_bytes)}.`,
      points: stored,
      days,
      limit: usage.storage_limit_bytes,
      label: "Limit",
    });
    drawChart($("transfer-chart"), {
      kind: "transfer",
      title: "Transfer this period",
      summary:
        usage.transfer_limit_bytes === null
          ? `${formatBytes(usage.transfer_bytes)} transferred; ${noPlan}.`
          : `${formatBytes(usage.transfer_bytes)} of ${formatBytes(usage.transfer_limit_bytes)} transferred` +
            `${percent(usage.transfer_bytes, usage.transfer_limit_bytes)}.`,
      points: transferred,
      days,
      limit: usage.transfer_limit_bytes,
      label: "Budget",
    });

    const users = [...usage.users].sort(
      (a, b) => b.stored_bytes - a.stored_bytes || b.transfer_bytes - a.transfer_bytes,
    );
    const body = $("users").tBodies[0];
    body.replaceChildren();
    for (const user of users) {
      const row = document.createElement("tr");
      const id = document.createElement("td");
      const code = document.createElement("code");
      code.textContent = user.user_id;
      id.append(code);
      const storedCell = document.createElement("td");
      storedCell.className = "num";
      storedCell.textContent = formatBytes(user.stored_bytes);
      const transferCell = document.createElement("td");
      transferCell.className = "num";
      transferCell.textContent = formatBytes(user.transfer_bytes);
      row.append(id, storedCell, transferCell);
      body.append(row);
    }
    show($("users"), users.length > 0);
    show($("users-empty"), users.length === 0);
    show($("usage-body"), true);
  }

  async function loadUsage() {
    const app = selected;
    if (!app) return;
    say($("usage-error"), "");
    try {
      const usage = await api("GET", `/api/apps/${app.app_id}/usage`);
      if (selected !== app) return;
      renderUsage(usage);
    } catch (err) {
      if (err.status === 401 || selected !== app) return;
      show($("usage-body"), false);
      say($("usage-error"), `The usage could not be loaded. ${err.message}`);
    }
  }

  $("usage-refresh").addEventListener("click", loadUsage);

  // ---- Start ------------------------------------------------------------------------------------------------------

  setMode("sign_in");
  session = loadSession();
  if (session) enterConsole(false);
  else showSignIn("");
})();
