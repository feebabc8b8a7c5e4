// What every part of the console uses: the page's elements, showing and saying things in it, and numbers, dates and
// billing periods written as people read them.

/** Bytes in a GB, as plans count them. */
export const BYTES_PER_GB = 1e9;

export const $ = (id) => document.getElementById(id);

export function show(element, on) {
  element.hidden = !on;
}

/** Puts `message` in `element` as text, and shows the element only while there is one. */
export function say(element, message) {
  element.textContent = message || "";
  element.hidden = !message;
}

export function setBusy(button, on) {
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

/** A server message (`you own no app with this id`) as a sentence. */
export function sentence(text) {
  const t = String(text).trim();
  if (!t) return t;
  const upper = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(upper) ? upper : `${upper}.`;
}

/** Bytes in decimal units, as the plans count them (a GB is 10^9 bytes): `1 GB`, `12.3 MB`, `512 B`. */
export function formatBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const shown = unit === 0 ? String(value) : String(Number(value.toPrecision(3)));
  return `${shown} ${units[unit]}`;
}

export function formatDate(rfc3339) {
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString();
}

/** `2026-12` → `2027-01`. */
export function nextPeriod(period) {
  const [year, month] = period.split("-").map(Number);
  return month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, "0")}`;
}

/** The days of the period `2026-12`. */
export function daysIn(period) {
  const [year, month] = period.split("-").map(Number);
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** `2026-12` → `December 2026`, in the browser's language. */
export function periodName(period) {
  const [year, month] = period.split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 1, 1));
  return date.toLocaleDateString(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
}

/** Storage typed in GB as bytes, exactly (no floating point), or null when it is not a plain decimal. */
export function gbToBytes(text) {
  const match = /^([0-9]{1,6})(?:\.([0-9]{1,9}))?$/.exec(text);
  if (!match) return null;
  return Number(match[1]) * BYTES_PER_GB + Number((match[2] || "").padEnd(9, "0"));
}

/** Bytes as GB in decimal text, exactly: `50`, `0.5`. */
export function bytesToGb(bytes) {
  const whole = Math.floor(bytes / BYTES_PER_GB);
  const fraction = String(bytes % BYTES_PER_GB).padStart(9, "0").replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : String(whole);
}
