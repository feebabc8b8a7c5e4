// An app's plan: the one in force this month and a change waiting for the next (`GET /api/apps/{id}/plan`), a live
// quote as the developer types (`GET /api/apps/quote`) in Simple mode (burst 5) or Builder mode (1 to 20), and the
// change (`PUT /api/apps/{id}/plan`). Storage is sent as the text typed, which the server reads exactly.

import { api } from "./console-api.js";
import { refreshUsage } from "./console-usage.js";
import { $, bytesToGb, formatBytes, gbToBytes, nextPeriod, periodName, say, setBusy, show } from "./console-util.js";

const SIMPLE_BURST = 5;

const storageInput = $("plan-storage");
const burstInput = $("plan-burst");
const burstRange = $("plan-burst-range");

let shown = null; // the app whose plan is shown
let plan = null; // its plan, as the server last answered
/** Whether the form holds the plan it was filled with or what the person typed: it is not overwritten then. */
let formFilled = false;

function termsText(terms) {
  return (
    `${formatBytes(terms.storage_limit_bytes)} stored, up to ${formatBytes(terms.transfer_limit_bytes)} ` +
    `transferred a month (${terms.burst} × storage): $${terms.monthly_usd} a month`
  );
}

function render() {
  const box = $("plan-now");
  box.replaceChildren();
  if (!plan) return;
  const line = (id, text, className) => {
    const p = document.createElement("p");
    p.id = id;
    p.textContent = text;
    if (className) p.className = className;
    box.append(p);
  };
  line(
    "plan-current",
    plan.current
      ? `In force in ${periodName(plan.period)}: ${termsText(plan.current)}.`
      : "No plan yet: choose one below. The first plan takes effect at once.",
  );
  if (plan.next) {
    const from = periodName(plan.next.from);
    const next = `From ${from}: ${termsText(plan.next)}. It lowers a limit, so it waits for this month to end.`;
    line("plan-next", next, "scheduled");
  }
}

function mode() {
  return $("mode-builder").checked ? "builder" : "simple";
}

function setMode(next, burst) {
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
  if (mode() === "simple") return SIMPLE_BURST;
  const text = burstInput.value.trim();
  if (!/^[0-9]{1,2}$/.test(text)) return null;
  const burst = Number(text);
  return burst >= 1 && burst <= 20 ? burst : null;
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

function quoteShows(price, detail, when) {
  $("quote-price").textContent = price;
  $("quote-detail").textContent = detail;
  $("quote-when").textContent = when;
}

let quoteSeq = 0;
let quoteTimer = 0;

/** Prices what the form says, after a short pause in the typing; only the answer to the latest question shows. */
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
  // So that typing `150` asks once, not three times.
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

async function load() {
  const app = shown;
  say($("plan-load-error"), "");
  try {
    const answer = await api("GET", `/api/apps/${app.app_id}/plan`);
    if (shown !== app) return;
    plan = answer;
  } catch (err) {
    if (err.status !== 401 && shown === app) say($("plan-load-error"), `The plan could not be loaded. ${err.message}`);
    return;
  }
  render();
  if (!formFilled) {
    // Start from the plan waiting (or the one in force), else from 1 GB in Simple mode.
    const terms = plan.next || plan.current;
    storageInput.value = terms ? bytesToGb(terms.storage_limit_bytes) : "1";
    const burst = terms ? terms.burst : SIMPLE_BURST;
    setMode(burst === SIMPLE_BURST ? "simple" : "builder", burst);
    formFilled = true;
  }
  requestQuote();
}

/** Shows the plan of `app` (none: nothing); `keepForm` keeps what was typed, for the same app shown again. */
export function showPlanOf(app, { keepForm = false } = {}) {
  shown = app;
  if (!keepForm) {
    plan = null;
    formFilled = false;
    storageInput.value = "";
    say($("plan-error"), "");
    render();
  }
  if (app) load();
}

function edited() {
  formFilled = true;
  requestQuote();
}

storageInput.addEventListener("input", edited);
burstInput.addEventListener("input", () => {
  if (chosenBurst() !== null) burstRange.value = burstInput.value.trim();
  edited();
});
burstRange.addEventListener("input", () => {
  burstInput.value = burstRange.value;
  edited();
});
for (const radio of [$("mode-simple"), $("mode-builder")]) {
  radio.addEventListener("change", () => {
    setMode(mode());
    edited();
  });
}

$("plan-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!shown) return;
  const app = shown;
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
    const answer = await api("PUT", `/api/apps/${app.app_id}/plan`, { storage_gb: text, burst });
    if (shown !== app) return;
    plan = answer;
    render();
    requestQuote();
    say(
      $("notice"),
      plan.next
        ? `The new plan is scheduled: it takes effect from ${periodName(plan.next.from)}.`
        : `The new plan is in force: $${plan.current.monthly_usd} a month.`,
    );
    refreshUsage();
  } catch (err) {
    if (err.status !== 401) say($("plan-error"), err.message);
  } finally {
    setBusy($("plan-submit"), false);
  }
});
