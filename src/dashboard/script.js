/* Squirrel Stats tracker: cookieless pageviews. <script defer src="https://HOST/script.js" data-site="SITE_ID"></script>
   Optional: data-api="/path" (first-party proxy endpoint). Opt out on a browser: localStorage.squirrel_ignore = "true". */
(function (w, d, n) {
  var s = d.currentScript, sid = s && s.getAttribute("data-site");
  if (!sid) return;
  var api = s.getAttribute("data-api") || new URL(s.src).origin + "/api/v1/pv";
  var keys = "keyword q ref s utm_campaign utm_content utm_medium utm_source utm_term action name pagename tab via gclid msclkid".split(" ");
  var last, first = 1, h = w.history;
  function send() {
    var l = w.location;
    if (l.protocol == "file:" || /(^|\.)localhost$/.test(l.hostname)) return;
    try { if (w.localStorage.getItem("squirrel_ignore") == "true") return; } catch (e) {}
    var c = d.querySelector("link[rel=canonical][href]"), u = new URL(c ? c.href : l.href);
    if (u.href == last) return;
    last = u.href;
    var q = {}, r = first ? d.referrer : "";
    new URLSearchParams(l.search).forEach(function (v, k) { if (keys.indexOf(k) > -1) q[k] = v; });
    if (r.indexOf(u.origin) == 0) r = "";
    first = 0;
    var url = api + "?" + new URLSearchParams({ sid: sid, h: u.origin, p: u.pathname || "/", r: r, qs: JSON.stringify(q) });
    if (!(n.sendBeacon && n.sendBeacon(url))) {
      var i = new Image(); i.alt = ""; i.setAttribute("aria-hidden", "true"); i.src = url;
    }
  }
  function wrap(m) {
    var o = h[m];
    if (o) h[m] = function () { var x = o.apply(this, arguments); send(); return x; };
  }
  wrap("pushState"); wrap("replaceState");
  w.addEventListener("popstate", send);
  if (d.prerendering) d.addEventListener("prerenderingchange", send, { once: true }); else send();
})(window, document, navigator);
