// The sign-in page of an OAuth authorization request. The password never leaves this page: on submit the page asks
// the server for the account's salt (pre-login), derives the login key from the password in a Web Worker
// (`loginkey.js`, loaded before this), and posts the form with the key in place of the password (the password fields
// have no `name`, so a browser never sends them, with or without this script).
"use strict";

(() => {
  const { derive, accountSalt, newSalt, base64 } = window.SyncKitLoginKey;

  const form = document.getElementById("signin");
  // A page that only says what went wrong has no form.
  if (!form) return;
  const email = document.getElementById("email");
  const password = document.getElementById("password");
  const repeat = document.getElementById("repeat");
  const repeatRow = document.getElementById("repeat-row");
  const submit = document.getElementById("submit-button");
  const progress = document.getElementById("progress");
  const errorBox = document.getElementById("error");
  const heading = document.getElementById("heading");
  const switcher = document.getElementById("switch");
  const switchText = document.getElementById("switch-text");
  const switchButton = document.getElementById("switch-button");
  const app = form.dataset.app;

  let mode = form.elements.intent.value; // "sign_in" or "sign_up"
  let busy = false;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function setBusy(on) {
    busy = on;
    submit.disabled = on;
    progress.hidden = !on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function setMode(next, clearError = true) {
    mode = next;
    form.elements.intent.value = next;
    const signUp = next === "sign_up";
    heading.textContent = signUp ? `Create an account for ${app}` : `Sign in to ${app}`;
    submit.textContent = signUp ? "Create account" : "Sign in";
    password.autocomplete = signUp ? "new-password" : "current-password";
    repeatRow.hidden = !signUp;
    repeat.required = signUp;
    if (switchButton) {
      switchText.textContent = signUp ? "Have an account?" : "New here?";
      switchButton.textContent = signUp ? "Sign in instead" : "Create an account";
    }
    if (clearError) showError("");
  }

  form.addEventListener("submit", async (event) => {
    // Cancel goes to the server as it is, which sends the browser back to the app.
    if (event.submitter && event.submitter.name === "cancel") return;
    event.preventDefault();
    if (busy) return;
    showError("");
    if (!email.checkValidity()) {
      showError("Enter your email address, like name@example.com.");
      email.focus();
      return;
    }
    if (!password.value) {
      showError("Enter your password.");
      password.focus();
      return;
    }
    if (mode === "sign_up" && password.value !== repeat.value) {
      showError("The two passwords differ.");
      repeat.focus();
      return;
    }
    setBusy(true);
    try {
      const address = email.value.trim();
      const salt = mode === "sign_up" ? newSalt() : await accountSalt(address);
      const key = await derive(password.value, salt);
      form.elements.login_key.value = base64(key);
      form.elements.salt.value = mode === "sign_up" ? base64(salt) : "";
      password.value = "";
      repeat.value = "";
      form.submit();
    } catch (err) {
      setBusy(false);
      showError(err.message);
    }
  });

  if (switchButton) {
    switchButton.addEventListener("click", () => setMode(mode === "sign_up" ? "sign_in" : "sign_up"));
    switcher.hidden = false;
  }
  setMode(mode, false);
  // Back from the next page (bfcache): the form is usable again.
  window.addEventListener("pageshow", () => setBusy(false));
})();
