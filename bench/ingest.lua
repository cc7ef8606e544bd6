-- wrk script for bench/ingest.sh: realistic, varied tracking hits against GET /api/v1/pv.
--
--   wrk -t2 -c32 -d20s --latency -s bench/ingest.lua http://127.0.0.1:PORT -- SITE_ID [XFF]
--
-- Every thread pre-builds POOL requests (deterministic per thread) and cycles through them, so the
-- per-request Lua cost is one table lookup and squirrel and nginx see byte-identical traffic.
-- Mix: ~50 real User-Agents (desktop Chrome/Firefox/Safari/Edge/Opera, iOS/Android phones, tablets,
-- ~7% bots and automation), ~200 distinct paths (a few with non-ASCII/spaces), ~40% with a
-- referrer, ~15% with a `qs` JSON object of utm_* parameters. Every value is percent-encoded.
-- When the second script argument is "xff", each request also carries an X-Forwarded-For from the
-- documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24): squirrel then sees many
-- visitors when started with TRUSTED_PROXIES=127.0.0.1, as it would behind a reverse proxy.
-- done() prints one machine-readable line starting with "BENCH " for ingest.sh to parse.

local POOL = 4096
local HOST = "https://example.com"

local user_agents = {
  -- Desktop Chrome (Windows, macOS, Linux, ChromeOS)
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
  -- Desktop Firefox
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
  "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
  "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
  -- Desktop Safari
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Safari/605.1.15",
  -- Desktop Edge, Opera, Yandex
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.92",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
  -- iPhone (Safari, Chrome, Firefox, in-app)
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 15_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/21E236 Instagram 329.0.0.41.93 (iPhone15,3; iOS 17_4_1; en_US; en; scale=3.00; 1290x2796; 591192893)",
  -- Android phones (Chrome, Samsung Internet, Firefox, Facebook in-app)
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.118 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.119 Mobile Safari/537.36",
  "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
  "Mozilla/5.0 (Linux; Android 13; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.230 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/460.0.0.48.109;]",
  "Mozilla/5.0 (Linux; Android 11; CPH2239) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.5993.111 Mobile Safari/537.36",
  -- Tablets (iPad, Android tablets, Kindle)
  "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPad; CPU OS 16_7_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Linux; Android 12; Lenovo TB-J616F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 like Chrome/124.0.6367.82 Safari/537.36",
  "Mozilla/5.0 (Linux; Android 14; SM-X916B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Safari/537.36",
  -- Bots and crawlers (stored, flagged is_bot = 1)
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
  "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
  "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
  "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
  "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
  "curl/8.5.0",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36",
}

-- Relative weights: current browsers are common, bots and automation rare (~7% of requests).
local function ua_weight(ua)
  if ua:find("bot") or ua:find("Bot") or ua:find("externalhit") or ua:find("curl/")
     or ua:find("Headless") then
    return 1
  elseif ua:find("Chrome/124") or ua:find("iPhone OS 17") or ua:find("Android 14") then
    return 4
  end
  return 2
end

local referrers = {
  "https://www.google.com/", "https://www.google.de/", "https://www.bing.com/search?q=squirrel+stats",
  "https://duckduckgo.com/", "https://t.co/a1B2c3D4e5", "https://news.ycombinator.com/item?id=40123456",
  "https://www.reddit.com/r/selfhosted/comments/1c2d3e4/privacy_friendly_analytics/",
  "https://github.com/squirrel-stats/squirrel", "https://www.linkedin.com/feed/",
  "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2F", "https://mastodon.social/@someone/112233445566",
  "https://example.com/", "https://example.com/blog", "https://search.brave.com/search?q=analytics",
  "android-app://com.google.android.gm/", "https://www.youtube.com/",
}

local utm_sets = {
  { utm_source = "newsletter", utm_medium = "email", utm_campaign = "spring_sale" },
  { utm_source = "twitter", utm_medium = "social", utm_campaign = "launch-week" },
  { utm_source = "google", utm_medium = "cpc", utm_campaign = "brand", utm_term = "web analytics" },
  { utm_source = "facebook", utm_medium = "paid_social", utm_campaign = "retargeting", utm_content = "carousel_2" },
  { utm_source = "hn" },
  { utm_source = "partner-blog", utm_medium = "referral", utm_campaign = "Q2 été", utm_content = "sidebar & footer" },
}

-- ~200 distinct paths: 20 sections x 10 pages, plus a few odd ones (unicode, spaces, trailing slash).
local sections = { "blog", "docs", "pricing", "features", "about", "careers", "changelog", "guides",
  "integrations", "customers", "legal", "help", "api", "compare", "podcast", "events", "press",
  "community", "download", "status" }
local paths = { "/" }
for _, s in ipairs(sections) do
  for i = 1, 10 do
    if i == 1 then
      paths[#paths + 1] = "/" .. s
    else
      paths[#paths + 1] = string.format("/%s/%s-%d", s, s == "blog" and "post" or "page", i)
    end
  end
end
for _, p in ipairs({ "/blog/café-au-lait", "/docs/getting started", "/söme/ünïcode/päth", "/docs/",
                     "/blog/2024/05/why-cookieless?", "/a/very/deep/nested/path/that/goes/on" }) do
  paths[#paths + 1] = p
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function qs_json(set)
  local keys = {}
  for k in pairs(set) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = json_string(k) .. ":" .. json_string(set[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local requests = {}
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  local sid = args[1] or "bench-site"
  local xff = args[2] == "xff"
  math.randomseed(1000 + (tid or 0))
  local weighted = {}
  for _, ua in ipairs(user_agents) do
    for _ = 1, ua_weight(ua) do weighted[#weighted + 1] = ua end
  end
  local languages = { "en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "en-GB,en;q=0.8", "es-ES,es;q=0.9" }
  local nets = { "192.0.2.", "198.51.100.", "203.0.113." }
  for i = 1, POOL do
    local path = paths[math.random(#paths)]
    local q = { "sid=" .. urlencode(sid), "h=" .. urlencode(HOST), "p=" .. urlencode(path) }
    if math.random() < 0.40 then
      q[#q + 1] = "r=" .. urlencode(referrers[math.random(#referrers)])
    end
    if math.random() < 0.15 then
      q[#q + 1] = "qs=" .. urlencode(qs_json(utm_sets[math.random(#utm_sets)]))
    end
    local headers = {
      ["User-Agent"] = weighted[math.random(#weighted)],
      ["Accept"] = "*/*",
      ["Accept-Language"] = languages[math.random(#languages)],
    }
    if xff then
      headers["X-Forwarded-For"] = nets[math.random(#nets)] .. math.random(1, 254)
    end
    requests[i] = wrk.format("GET", "/api/v1/pv?" .. table.concat(q, "&"), headers)
  end
end

function request()
  counter = counter % POOL + 1
  return requests[counter]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d errors_connect=%d errors_read=%d errors_write=%d " ..
    "errors_status=%d errors_timeout=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.0f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
