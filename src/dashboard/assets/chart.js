// The site page's chart, drawn as SVG: the chosen metric over the range (an area and a line), the
// previous period as a dashed line when comparing, a tooltip that follows the pointer or the arrow
// keys, and the same numbers in a table for screen readers and for anyone who wants them exact.

import { formatCompact, formatNumber, h, svg } from "./ui.js";

const HEIGHT = 260;
const PAD = { top: 16, right: 12, bottom: 30, left: 44 };

const hourFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric" });
const hourLongFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
const dayLongFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" });

// Buckets of one period: label for the axis, a long label for the tooltip and table, and the values.
export function buckets(period) {
  if (period.hours) {
    return period.hours.map((p) => {
      const at = new Date(p.hour);
      return { key: p.hour, short: hourFormat.format(at), long: hourLongFormat.format(at), pageviews: p.pageviews, visitors: p.unique_sessions };
    });
  }
  return (period.days || []).map((p) => {
    const [y, m, d] = p.day.split("-").map(Number);
    const at = new Date(Date.UTC(y, m - 1, d));
    return { key: p.day, short: dayFormat.format(at), long: dayLongFormat.format(at), pageviews: p.pageviews, visitors: p.unique_sessions };
  });
}

function niceMax(value) {
  if (value <= 4) return 4;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

const METRIC_LABEL = { visitors: "Visitors", pageviews: "Pageviews" };

// Renders into `container` and redraws when it is resized; returns the element holding the table.
export function renderChart(container, data, { metric, compare }) {
  const current = buckets(data);
  const previous = compare && data.previous ? buckets(data.previous) : null;
  const label = METRIC_LABEL[metric];
  const total = current.reduce((sum, b) => sum + b.pageviews, 0);

  const tooltip = h("div", { class: "chart-tooltip", role: "status", "aria-live": "off", hidden: true });
  const figure = h("div", { class: "chart-figure" });
  const table = dataTable(current, previous);
  const legend = h(
    "div",
    { class: "chart-legend" },
    h("span", { class: "legend-item" }, h("span", { class: "swatch current", "aria-hidden": "true" }), `${label}, this period`),
    previous ? h("span", { class: "legend-item" }, h("span", { class: "swatch previous", "aria-hidden": "true" }), `${label}, previous period`) : null,
  );
  container.replaceChildren(
    h("div", { class: "chart-wrap" }, figure, tooltip),
    legend,
    h("details", { class: "chart-data" }, h("summary", { text: "Show the chart's numbers as a table" }), table),
  );
  container.dataset.totalPageviews = String(total);

  let active = -1;
  let drawn = null;
  const draw = () => {
    const width = Math.max(280, Math.floor(figure.clientWidth || 640));
    drawn = drawSvg(width, current, previous, metric, label, {
      point: (index) => setActive(index),
      step: (delta) => setActive(active < 0 ? (delta > 0 ? 0 : current.length - 1) : Math.min(current.length - 1, Math.max(0, active + delta))),
    });
    figure.replaceChildren(drawn.root);
    if (active >= 0) drawn.highlight(active);
  };
  // Highlights a point in place (the SVG is not redrawn, so keyboard focus stays on it).
  function setActive(index) {
    if (index === active) return;
    active = index;
    drawn.highlight(index);
    if (index < 0) {
      tooltip.hidden = true;
      return;
    }
    const b = current[index];
    const prev = previous ? previous[index] : null;
    tooltip.replaceChildren(
      h("p", { class: "tooltip-title", text: b.long }),
      h("p", {}, h("span", { class: "strong", text: formatNumber(b.visitors) }), " visitors"),
      h("p", {}, h("span", { class: "strong", text: formatNumber(b.pageviews) }), " pageviews"),
      prev ? h("p", { class: "muted", text: `Previous: ${formatNumber(prev[metric])} ${label.toLowerCase()} (${prev.long})` }) : null,
    );
    tooltip.hidden = false;
    const width = figure.clientWidth || 640;
    const x = xAt(index, current.length, width);
    tooltip.style.left = `${Math.min(Math.max(x - 95, 0), Math.max(width - 190, 0))}px`;
  }
  draw();
  if (typeof ResizeObserver === "function") {
    let lastWidth = figure.clientWidth;
    const observer = new ResizeObserver(() => {
      if (figure.clientWidth !== lastWidth) {
        lastWidth = figure.clientWidth;
        draw();
      }
    });
    observer.observe(figure);
    return () => observer.disconnect();
  }
  return () => {};
}

function xAt(index, count, width) {
  const inner = width - PAD.left - PAD.right;
  return count <= 1 ? PAD.left + inner / 2 : PAD.left + (inner * index) / (count - 1);
}

// The SVG of one width; `on.point(i)` when the pointer is over bucket i (-1: left the chart),
// `on.step(±1)` for the arrow keys. Returns the element and a function that highlights a bucket.
function drawSvg(width, current, previous, metric, label, on) {
  const values = current.map((b) => b[metric]);
  const previousValues = previous ? previous.map((b) => b[metric]) : [];
  const top = niceMax(Math.max(1, ...values, ...previousValues));
  const innerHeight = HEIGHT - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + innerHeight - (innerHeight * v) / top;
  const x = (i) => xAt(i, current.length, width);
  const sum = values.reduce((a, b) => a + b, 0);
  const unit = current.length === 24 ? "hours" : "days";

  const root = svg("svg", {
    class: "chart",
    width,
    height: HEIGHT,
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: "img",
    tabindex: "0",
    "aria-label": `${label} chart: ${formatNumber(sum)} over ${current.length} ${unit}. The left and right arrow keys read each point.`,
    "data-metric": metric,
  });

  for (let i = 0; i <= 4; i += 1) {
    const value = (top * i) / 4;
    root.append(
      svg("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: y(value), y2: y(value) }),
      svg("text", { class: "axis", x: PAD.left - 8, y: y(value) + 4, "text-anchor": "end", text: formatCompact(value) }),
    );
  }
  const labelEvery = Math.max(1, Math.ceil(current.length / Math.max(2, Math.floor((width - PAD.left) / 70))));
  current.forEach((b, i) => {
    if (i % labelEvery === 0) {
      root.append(svg("text", { class: "axis", x: x(i), y: HEIGHT - 8, "text-anchor": "middle", text: b.short }));
    }
  });

  if (previous) {
    const d = previousValues.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
    root.append(svg("path", { class: "line previous", d }));
  }
  const line = values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const base = y(0).toFixed(1);
  const cursor = svg("line", { class: "cursor", x1: 0, x2: 0, y1: PAD.top, y2: PAD.top + innerHeight, visibility: "hidden" });
  root.append(
    svg("path", { class: "area", d: `${line}L${x(values.length - 1).toFixed(1)},${base}L${x(0).toFixed(1)},${base}Z` }),
    svg("path", { class: "line current", d: line }),
    cursor,
  );
  const radius = current.length > 31 ? 0 : 3;
  const points = values.map((v, i) => svg("circle", { class: "point", cx: x(i), cy: y(v), r: radius, "data-bucket": current[i].key, "data-value": v }));
  root.append(...points);

  const step = current.length > 1 ? (width - PAD.left - PAD.right) / (current.length - 1) : width;
  const hit = svg("rect", { class: "hit", x: 0, y: 0, width, height: HEIGHT });
  hit.addEventListener("pointermove", (event) => {
    const box = root.getBoundingClientRect();
    const i = Math.round((event.clientX - box.left - PAD.left) / step);
    on.point(Math.min(current.length - 1, Math.max(0, i)));
  });
  hit.addEventListener("pointerleave", () => on.point(-1));
  root.append(hit);
  root.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      on.step(event.key === "ArrowRight" ? 1 : -1);
    } else if (event.key === "Escape") {
      on.point(-1);
    }
  });
  root.addEventListener("blur", () => on.point(-1));

  let highlighted = -1;
  const highlight = (index) => {
    if (highlighted >= 0) {
      points[highlighted].setAttribute("class", "point");
      points[highlighted].setAttribute("r", radius);
    }
    highlighted = index;
    if (index < 0) {
      cursor.setAttribute("visibility", "hidden");
      return;
    }
    points[index].setAttribute("class", "point active");
    points[index].setAttribute("r", 5);
    cursor.setAttribute("x1", x(index));
    cursor.setAttribute("x2", x(index));
    cursor.setAttribute("visibility", "visible");
  };
  return { root, highlight };
}

function dataTable(current, previous) {
  return h(
    "table",
    { class: "table compact chart-table" },
    h("caption", { class: "visually-hidden", text: "Visitors and pageviews per period of the chart" }),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", text: current.length === 24 ? "Hour" : "Day" }),
        h("th", { scope: "col", class: "num", text: "Visitors" }),
        h("th", { scope: "col", class: "num", text: "Pageviews" }),
        previous ? h("th", { scope: "col", class: "num", text: "Previous visitors" }) : null,
        previous ? h("th", { scope: "col", class: "num", text: "Previous pageviews" }) : null,
      ),
    ),
    h(
      "tbody",
      {},
      current.map((b, i) =>
        h(
          "tr",
          { "data-bucket": b.key, "data-visitors": b.visitors, "data-pageviews": b.pageviews },
          h("th", { scope: "row", text: b.long }),
          h("td", { class: "num", text: formatNumber(b.visitors) }),
          h("td", { class: "num", text: formatNumber(b.pageviews) }),
          previous ? h("td", { class: "num", text: formatNumber(previous[i]?.visitors ?? 0) }) : null,
          previous ? h("td", { class: "num", text: formatNumber(previous[i]?.pageviews ?? 0) }) : null,
        ),
      ),
    ),
  );
}
