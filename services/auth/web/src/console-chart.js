// The console's charts: a line over the days of a billing period against a limit, drawn as SVG (styled by
// console.css), with the scale and the limit labelled and a summary for screen readers.

import { formatBytes } from "./console-util.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * A chart of `points` ([day of the month, bytes]) over the `days` of the period, against `limit` (bytes, or null):
 * the line, the area under it, a dashed line at the limit, and the axes' scale.
 */
export function drawChart(figure, { kind, title, summary, points, days, limit, label }) {
  figure.replaceChildren();
  figure.className = `chart ${kind}`;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  const said = document.createElement("p");
  said.className = "summary";
  said.textContent = summary;
  figure.append(caption, said);

  const [width, height] = [480, 190];
  const [left, right, top, bottom] = [60, 10, 16, 24];
  // The scale's top: the limit or the largest value, whichever is higher, with room above for the limit's label;
  // with neither (nothing used, no plan), a baseline alone.
  const highest = Math.max(limit || 0, ...points.map(([, v]) => v));
  const top_ = Math.max(highest, 1) * 1.12;
  const x = (day) => left + ((day - 1) / Math.max(days - 1, 1)) * (width - left - right);
  const y = (value) => top + (1 - value / top_) * (height - top - bottom);
  const described = `${title}: ${summary}`;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": described });
  chart.append(svg("title", {}, described));

  for (const fraction of highest > 0 ? [0, 0.5, 1] : [0]) {
    const value = highest * fraction;
    chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(value), y2: y(value) }));
    const at = { class: "axis-label", x: left - 6, y: y(value) + 4, "text-anchor": "end" };
    chart.append(svg("text", at, formatBytes(Math.round(value))));
  }
  for (const day of [1, Math.ceil(days / 2), days]) {
    const at = { class: "axis-label", x: x(day), y: height - 6, "text-anchor": "middle" };
    chart.append(svg("text", at, String(day)));
  }
  if (points.length) {
    const line = points.map(([day, value]) => `${x(day).toFixed(1)},${y(value).toFixed(1)}`);
    const first = points[0][0];
    const last = points[points.length - 1][0];
    const base = y(0).toFixed(1);
    const area = `M${x(first).toFixed(1)},${base} L${line.join(" L")} L${x(last).toFixed(1)},${base} Z`;
    chart.append(svg("path", { class: "area", d: area }));
    chart.append(svg("polyline", { class: "line", points: line.join(" ") }));
    const [lastDay, lastValue] = points[points.length - 1];
    chart.append(svg("circle", { class: "dot", cx: x(lastDay), cy: y(lastValue), r: 3.5 }));
  }
  if (limit !== null && limit !== undefined) {
    chart.append(svg("line", { class: "limit", x1: left, x2: width - right, y1: y(limit), y2: y(limit) }));
    const at = { class: "limit-label", x: width - right, y: y(limit) - 5, "text-anchor": "end" };
    chart.append(svg("text", at, `${label} ${formatBytes(limit)}`));
  }
  figure.append(chart);
}
