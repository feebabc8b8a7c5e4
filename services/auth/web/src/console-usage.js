// An app's usage in the billing period (`GET /api/apps/{id}/usage`): storage and the transfer so far as charts over
// the period's days, each against its limit, and what each user stores and transferred.

import { api } from "./console-api.js";
import { drawChart } from "./console-chart.js";
import { $, daysIn, formatBytes, periodName, say, show } from "./console-util.js";

let shown = null; // the app whose usage is shown

/** ` (87%)` of `used` against `limit`, or nothing without a limit. */
function percent(used, limit) {
  if (!limit) return "";
  const share = (used / limit) * 100;
  return ` (${share < 1 && share > 0 ? "under 1" : Math.round(share)}%)`;
}

function summary(used, limit, verb) {
  if (limit === null) return `${formatBytes(used)} ${verb}; no plan, so no limit.`;
  return `${formatBytes(used)} of ${formatBytes(limit)} ${verb}${percent(used, limit)}.`;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.append(text);
  return td;
}

function render(usage) {
  $("usage-period").textContent = periodName(usage.period);
  const days = daysIn(usage.period);
  const dayOf = (day) => Number(day.slice(8, 10));
  // Storage as it stood at each day's end; transfer added up from the period's start, as its budget counts it.
  const stored = usage.days.map((d) => [dayOf(d.day), d.stored_bytes]);
  let total = 0;
  const transferred = usage.days.map((d) => [dayOf(d.day), (total += d.transfer_bytes)]);
  drawChart($("storage-chart"), {
    kind: "storage",
    title: "Storage",
    summary: summary(usage.stored_bytes, usage.storage_limit_bytes, "stored"),
    points: stored,
    days,
    limit: usage.storage_limit_bytes,
    label: "Limit",
  });
  drawChart($("transfer-chart"), {
    kind: "transfer",
    title: "Transfer this period",
    summary: summary(usage.transfer_bytes, usage.transfer_limit_bytes, "transferred"),
    points: transferred,
    days,
    limit: usage.transfer_limit_bytes,
    label: "Budget",
  });

  // The largest first, as the server lists them.
  const users = usage.users;
  const rows = users.map((user) => {
    const row = document.createElement("tr");
    const id = document.createElement("code");
    id.textContent = user.user_id;
    row.append(
      cell(id),
      cell(formatBytes(user.stored_bytes), "num"),
      cell(formatBytes(user.transfer_bytes), "num"),
    );
    return row;
  });
  $("users").tBodies[0].replaceChildren(...rows);
  show($("users"), users.length > 0);
  show($("users-empty"), users.length === 0);
  show($("usage-body"), true);
}

/** Loads the usage of the app shown again. */
export async function refreshUsage() {
  const app = shown;
  if (!app) return;
  say($("usage-error"), "");
  try {
    const usage = await api("GET", `/api/apps/${app.app_id}/usage`);
    if (shown === app) render(usage);
  } catch (err) {
    if (err.status === 401 || shown !== app) return;
    show($("usage-body"), false);
    say($("usage-error"), `The usage could not be loaded. ${err.message}`);
  }
}

/** Shows the usage of `app` (none: nothing). */
export function showUsageOf(app) {
  shown = app;
  if (!app) {
    show($("usage-body"), false);
    say($("usage-error"), "");
    return;
  }
  refreshUsage();
}

$("usage-refresh").addEventListener("click", refreshUsage);
