// One site's statistics: visitors now, the totals of a range against the previous period, the
// chart, the breakdown tables (each downloadable as CSV) and the tracking snippet.

import { get, query } from "./api.js";
import { renderChart } from "./chart.js";
import { copyButton, errorBox, formatDuration, formatNumber, h, loading, setTitle } from "./ui.js";

const RANGES = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["last_7_days", "Last 7 days"],
  ["last_30_days", "Last 30 days"],
  ["this_month", "This month"],
  ["last_month", "Last month"],
];

const TOTALS = [
  { key: "visitors", label: "Unique visitors", format: formatNumber, chart: "visitors" },
  { key: "pageviews", label: "Total pageviews", format: formatNumber, chart: "pageviews" },
  { key: "visits", label: "Visits", format: formatNumber },
  { key: "bounce_rate", label: "Bounce rate", format: (v) => `${v}%`, lowerIsBetter: true },
  { key: "avg_visit_duration", label: "Visit duration", format: formatDuration },
];

// Cards of breakdowns; each tab is one `breakdown` of the stats API.
const PANELS = [
  { title: "Pages", tabs: [["pages", "Top pages"], ["entry_pages", "Entry pages"], ["exit_pages", "Exit pages"]], column: "Page" },
  { title: "Sources", tabs: [["referrers", "Referrers"], ["utm_source", "UTM source"], ["utm_medium", "UTM medium"], ["utm_campaign", "UTM campaign"]], column: "Source" },
  { title: "Devices", tabs: [["browsers", "Browsers"], ["os", "Operating systems"], ["devices", "Devices"]], column: "Name" },
  { title: "Countries", tabs: [["countries", "Countries"]], column: "Country" },
];

const REALTIME_EVERY_MS = 30_000;

let regionNames = null;
try {
  regionNames = new Intl.DisplayNames(undefined, { type: "region" });
} catch {
  regionNames = null;
}

function displayValue(breakdown, value) {
  if (breakdown === "countries") {
    try {
      const name = regionNames && regionNames.of(value);
      return name && name !== value ? `${name} (${value})` : value;
    } catch {
      return value;
    }
  }
  if (breakdown === "devices") return value.charAt(0).toUpperCase() + value.slice(1);
  return value;
}

export async function sitePage(main, context) {
  const siteId = context.params[0];
  main.append(loading("Loading site…"));
  let site;
  try {
    site = await get(`sites/${siteId}`);
  } catch (error) {
    if (!context.isCurrent()) return;
    setTitle("Site");
    main.replaceChildren(
      error.status === 404
        ? h("section", { class: "card center narrow" }, h("h1", { text: "Site not found" }), h("p", { class: "muted", text: "It may have been deleted, or it belongs to another account." }), h("a", { class: "button", href: "/dashboard", text: "All sites" }))
        : errorBox(error, () => {
            main.replaceChildren();
            sitePage(main, context);
          }),
    );
    return;
  }
  if (!context.isCurrent()) return;
  setTitle(site.name);

  const state = {
    range: RANGES.some(([r]) => r === context.search.get("range")) ? context.search.get("range") : "today",
    compare: context.search.get("compare") === "previous",
    metric: context.search.get("metric") === "pageviews" ? "pageviews" : "visitors",
    tabs: {},
    generation: 0,
  };
  const tzOffset = new Date().getTimezoneOffset();
  const common = () => ({ site_id: site.id, range: state.range, timezone_offset: tzOffset });

  // Header: name, identifier, visitors now.
  const liveCount = h("span", { class: "live-count", "data-testid": "realtime-visitors", text: "–" });
  const live = h(
    "p",
    { class: "live", title: "Visitors in the last five minutes" },
    h("span", { class: "pulse", "aria-hidden": "true" }),
    liveCount,
    h("span", { class: "live-label", text: " visitors now" }),
  );
  async function refreshLive() {
    try {
      const now = await get(`realtime?${query({ site_id: site.id })}`);
      liveCount.textContent = formatNumber(now.visitors);
      live.classList.remove("stale");
    } catch {
      live.classList.add("stale");
      liveCount.textContent = "?";
    }
  }
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") refreshLive();
  }, REALTIME_EVERY_MS);
  context.onCleanup(() => clearInterval(timer));
  refreshLive();

  // Controls.
  const rangeSelect = h(
    "select",
    { id: "range", name: "range" },
    RANGES.map(([value, label]) => h("option", { value, text: label, selected: value === state.range })),
  );
  const compareBox = h("input", { id: "compare", type: "checkbox", checked: state.compare });
  const controls = h(
    "div",
    { class: "controls" },
    h("div", { class: "control" }, h("label", { for: "range", text: "Range" }), rangeSelect),
    h("div", { class: "control checkbox" }, compareBox, h("label", { for: "compare", text: "Compare with previous period" })),
  );

  const totals = h("section", { class: "totals", "aria-label": "Totals", "aria-live": "polite", "aria-busy": "true" });
  const chartBox = h("div", { class: "chart-box", "aria-busy": "true" });
  const chartTitle = h("h2", { class: "card-title", text: "Visitors" });
  const chartCard = h("section", { class: "card chart-card", "aria-label": "Chart" }, chartTitle, chartBox);
  const panels = h("div", { class: "panels" }, PANELS.map((panel) => breakdownPanel(panel)));

  const snippetText = `<script defer src="${location.origin}/script.js" data-site="${site.identifier}"></script>`;
  const snippet = h(
    "section",
    { class: "card", "aria-labelledby": "snippet-heading" },
    h("h2", { id: "snippet-heading", class: "card-title", text: site.pageview_count ? "Tracking code" : "Waiting for the first pageview" }),
    h("p", { class: "muted", text: "Paste this line into the <head> of every page of the site. It sets no cookie and weighs under 1 KB." }),
    h("div", { class: "snippet-row" }, h("pre", { class: "snippet" }, h("code", { text: snippetText })), copyButton(() => snippetText)),
  );

  const sections = [
    h(
      "div",
      { class: "site-head" },
      h(
        "div",
        {},
        h("a", { href: "/dashboard", class: "back", text: "← All sites" }),
        h("h1", { text: site.name }),
        h("p", { class: "muted" }, "Site id ", h("code", { text: site.identifier })),
      ),
      live,
    ),
    site.pageview_count ? null : snippet,
    controls,
    totals,
    chartCard,
    panels,
    site.pageview_count ? snippet : null,
  ];
  main.replaceChildren(...sections.filter(Boolean));

  let disposeChart = () => {};
  context.onCleanup(() => disposeChart());
  let lastChart = null;

  function syncUrl() {
    const search = new URLSearchParams();
    if (state.range !== "today") search.set("range", state.range);
    if (state.compare) search.set("compare", "previous");
    if (state.metric !== "visitors") search.set("metric", state.metric);
    const qs = search.toString();
    history.replaceState(null, "", `${location.pathname}${qs ? `?${qs}` : ""}`);
  }

  function drawChart() {
    if (!lastChart) return;
    disposeChart();
    chartTitle.textContent = `${state.metric === "visitors" ? "Visitors" : "Pageviews"} ${lastChart.data_type === "hourly" ? "per hour" : "per day"}`;
    disposeChart = renderChart(chartBox, lastChart, { metric: state.metric, compare: state.compare });
  }

  async function loadTotalsAndChart(generation) {
    totals.setAttribute("aria-busy", "true");
    chartBox.setAttribute("aria-busy", "true");
    if (!totals.childElementCount) totals.append(loading("Loading totals…"));
    if (!chartBox.childElementCount) chartBox.append(loading("Loading chart…"));
    const chartQuery = query({ ...common(), compare: state.compare ? "previous" : "" });
    const [statsResult, chartResult] = await Promise.allSettled([get(`stats?${query(common())}`), get(`chart?${chartQuery}`)]);
    if (generation !== state.generation || !context.isCurrent()) return;
    if (statsResult.status === "fulfilled") renderTotals(statsResult.value.totals);
    else totals.replaceChildren(errorBox(statsResult.reason, () => reload()));
    if (chartResult.status === "fulfilled") {
      lastChart = chartResult.value;
      drawChart();
    } else {
      chartBox.replaceChildren(errorBox(chartResult.reason, () => reload()));
    }
    totals.setAttribute("aria-busy", "false");
    chartBox.setAttribute("aria-busy", "false");
  }

  function renderTotals(values) {
    totals.replaceChildren(
      ...TOTALS.map((spec) => {
        const { value, previous } = values[spec.key];
        const body = [
          h("span", { class: "total-label", text: spec.label }),
          h("span", { class: "total-value", "data-testid": `total-${spec.key}`, "data-value": value, text: spec.format(value) }),
          change(value, previous, spec),
        ];
        if (!spec.chart) return h("div", { class: "total" }, body);
        const button = h("button", { type: "button", class: "total selectable", "aria-pressed": String(state.metric === spec.chart), title: `Show ${spec.label.toLowerCase()} in the chart` }, body);
        button.addEventListener("click", () => {
          state.metric = spec.chart;
          for (const other of totals.querySelectorAll("button.total")) other.setAttribute("aria-pressed", String(other === button));
          syncUrl();
          drawChart();
        });
        return button;
      }),
    );
  }

  function change(value, previous, spec) {
    if (!previous) {
      return h("span", { class: "change none", text: value ? "New this period" : "No change" });
    }
    const percent = Math.round(((value - previous) / previous) * 100);
    if (percent === 0) return h("span", { class: "change none", text: "No change" });
    const up = percent > 0;
    const good = spec.lowerIsBetter ? !up : up;
    return h(
      "span",
      { class: `change ${good ? "good" : "bad"}`, title: `Previous period: ${spec.format(previous)}` },
      h("span", { "aria-hidden": "true", text: up ? "↑ " : "↓ " }),
      `${Math.abs(percent)}%`,
      h("span", { class: "visually-hidden", text: ` ${up ? "more" : "less"} than the previous period (${spec.format(previous)})` }),
    );
  }

  function breakdownPanel(panel) {
    const panelId = `panel-${panel.title.toLowerCase()}`;
    state.tabs[panel.title] = panel.tabs[0][0];
    const body = h("div", { class: "breakdown-body", id: `${panelId}-body`, role: panel.tabs.length > 1 ? "tabpanel" : null });
    const download = h("a", { class: "download", text: "Download CSV" });
    const tabButtons = panel.tabs.map(([name, label], index) =>
      h("button", {
        type: "button",
        role: "tab",
        id: `${panelId}-tab-${name}`,
        "aria-selected": String(index === 0),
        "aria-controls": `${panelId}-body`,
        tabindex: index === 0 ? "0" : "-1",
        "data-breakdown": name,
        text: label,
      }),
    );
    const select = (button) => {
      for (const other of tabButtons) {
        const selected = other === button;
        other.setAttribute("aria-selected", String(selected));
        other.tabIndex = selected ? 0 : -1;
      }
      body.setAttribute("aria-labelledby", button.id);
      state.tabs[panel.title] = button.dataset.breakdown;
      loadBreakdown(panel, body, download, state.generation);
    };
    tabButtons.forEach((button, index) => {
      button.addEventListener("click", () => select(button));
      button.addEventListener("keydown", (event) => {
        const moves = { ArrowRight: 1, ArrowLeft: -1 };
        if (!(event.key in moves)) return;
        event.preventDefault();
        const next = tabButtons[(index + moves[event.key] + tabButtons.length) % tabButtons.length];
        next.focus();
        select(next);
      });
    });
    if (panel.tabs.length > 1) body.setAttribute("aria-labelledby", tabButtons[0].id);
    const header =
      panel.tabs.length > 1
        ? h("div", { class: "breakdown-head" }, h("h2", { class: "card-title", text: panel.title }), h("div", { class: "tabs", role: "tablist", "aria-label": panel.title }, tabButtons))
        : h("div", { class: "breakdown-head" }, h("h2", { class: "card-title", text: panel.title }));
    const card = h("section", { class: "card breakdown", "data-panel": panel.title }, header, body, h("div", { class: "breakdown-foot" }, download));
    card.reload = (generation) => loadBreakdown(panel, body, download, generation);
    return card;
  }

  async function loadBreakdown(panel, body, download, generation) {
    const breakdown = state.tabs[panel.title];
    body.setAttribute("aria-busy", "true");
    body.dataset.breakdown = breakdown;
    if (!body.childElementCount) body.append(loading());
    download.href = `/api/v1/stats?${query({ ...common(), breakdown, format: "csv", limit: 1000 })}`;
    download.setAttribute("download", `${site.identifier}-${state.range}-${breakdown}.csv`);
    download.setAttribute("aria-label", `Download ${breakdown.replace("_", " ")} as CSV`);
    try {
      const data = await get(`stats?${query({ ...common(), breakdown, limit: 10 })}`);
      if (generation !== state.generation || state.tabs[panel.title] !== breakdown || !context.isCurrent()) return;
      body.replaceChildren(breakdownTable(panel, breakdown, data.breakdown));
    } catch (error) {
      if (generation !== state.generation) return;
      body.replaceChildren(errorBox(error, () => loadBreakdown(panel, body, download, state.generation)));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  }

  function breakdownTable(panel, breakdown, data) {
    const metric = breakdown === "entry_pages" || breakdown === "exit_pages" || breakdown === "referrers" ? "visits" : "pageviews";
    if (!data.results.length) {
      return h("p", { class: "empty muted", text: "No data for this period yet." });
    }
    const max = Math.max(...data.results.map((r) => r.visitors), 1);
    return h(
      "table",
      { class: "table breakdown-table", "data-breakdown": breakdown },
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col", text: panel.column }), h("th", { scope: "col", class: "num", text: "Visitors" }), h("th", { scope: "col", class: "num", text: metric === "visits" ? "Visits" : "Pageviews" })),
      ),
      h(
        "tbody",
        {},
        data.results.map((row) => {
          const bar = h("span", { class: "bar", "aria-hidden": "true" });
          bar.style.width = `${Math.max(2, (row.visitors / max) * 100)}%`;
          return h(
            "tr",
            { "data-value": row.value, "data-visitors": row.visitors, "data-count": row[metric] },
            h("th", { scope: "row", class: "label-cell" }, bar, h("span", { class: "label-text", text: displayValue(breakdown, row.value) })),
            h("td", { class: "num", text: formatNumber(row.visitors) }),
            h("td", { class: "num", text: formatNumber(row[metric]) }),
          );
        }),
      ),
      data.count > data.results.length
        ? h("tfoot", {}, h("tr", {}, h("td", { colspan: "3", class: "muted", text: `Top ${data.results.length} of ${formatNumber(data.count)}; the CSV has up to 1,000.` })))
        : null,
    );
  }

  function reload() {
    state.generation += 1;
    const generation = state.generation;
    loadTotalsAndChart(generation);
    for (const card of panels.children) card.reload(generation);
  }

  rangeSelect.addEventListener("change", () => {
    state.range = rangeSelect.value;
    syncUrl();
    reload();
  });
  compareBox.addEventListener("change", () => {
    state.compare = compareBox.checked;
    syncUrl();
    reload();
  });
  reload();
}
