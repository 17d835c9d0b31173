// flask-maintenance at the edge: a Cloudflare Worker written by `flask maintenance edge-worker`.
//
// It forwards every request to the origin, except while maintenance blocks: then it answers 503
// itself (the page, or problem JSON for API paths and JSON clients), as the app would. It also
// answers with the page when the origin cannot answer (down, 502, 504, 52x, a 503 not ours).
//
// The state comes from the KV namespace bound as MAINTENANCE (key "state", the document
// `flask maintenance edge-state` prints), else from the app's status path, read at most once
// per interval by each isolate. Generated: edit the app's config and generate it again instead.

const SETTINGS = "__SETTINGS__";

const MODES = new Set(SETTINGS.modes);
const BLOCKING_MODES = new Set(SETTINGS.blockingModes);
const SAFE_METHODS = new Set(SETTINGS.safeMethods);
const INSTANT = new RegExp("^(?:" + SETTINGS.instantPattern + ")$");
const NETWORKS = SETTINGS.allowedNetworks.map(([version, network, bits]) => ({
  version,
  bits: BigInt(bits),
  network: BigInt(network),
}));
const OFF = Object.freeze({ active: false, mode: null, retryAfter: SETTINGS.defaultRetry });

// Per isolate: the last state read (a KV read that fails, or an unreachable status path,
// keeps it, as the app keeps its last known state), and when the status path is due again.
let lastKnown = OFF;
let nextPoll = 0;
// How long the visitor whose request is due to read the status path waits for it (the origin
// may be too busy to answer); past it, the last state known stands.
const STATUS_TIMEOUT_MS = 3000;

export default {
  async fetch(request, env) {
    const now = Date.now();
    const state = await currentState(request, env, now);
    const path = appPath(new URL(request.url).pathname);
    const asJson = isApiPath(path) || prefersJson(request.headers.get("Accept"));
    if (state.active && BLOCKING_MODES.has(state.mode) && !passes(request, state, path)) {
      return answer(state.mode === "readonly" ? "readonly" : "full", asJson, state.retryAfter);
    }
    return forward(request, state, asJson);
  },
};

// -- the state ---------------------------------------------------------------------------------

async function currentState(request, env, now) {
  if (env.MAINTENANCE) {
    try {
      lastKnown = stateFrom(await env.MAINTENANCE.get("state"), now);
    } catch (error) {
      console.warn("maintenance state unavailable in KV, keeping the last known one:", String(error));
    }
    return lastKnown;
  }
  if (now >= nextPoll) {
    // Set before the read: the isolate's other requests go on with the last state meanwhile.
    nextPoll = now + SETTINGS.interval * 1000;
    try {
      const status = await fetch(new URL(SETTINGS.statusPath, request.url), {
        headers: { Accept: "application/json" },
        redirect: "manual",
        signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
      });
      if (status.status === 200) {
        lastKnown = stateFrom(documentFromStatus(await status.text()), now);
      } else {
        await status.body?.cancel();
      }
    } catch (error) {
      console.warn("maintenance status unavailable at the origin, keeping the last known one:", String(error));
    }
  } else if (lastKnown.windowAt !== undefined && now >= lastKnown.windowAt) {
    return stateFrom(lastKnown.document, now); // a planned window starts or ends between reads
  }
  return lastKnown;
}

// The public status document, as the KV document: the same reader interprets both.
function documentFromStatus(text) {
  let status;
  try {
    status = JSON.parse(text);
  } catch {
    return text; // unreadable: the reader fails closed
  }
  if (!isObject(status)) return text;
  return JSON.stringify({
    active: status.active !== false,
    mode: status.mode,
    retry: status.retry_after,
    ends_at: status.ends_at,
    scheduled: status.scheduled,
  });
}

// The state a document means at `now`, as the app reads its lock and plan: no document is off;
// an empty one is full maintenance; one that cannot be read is full maintenance (fail closed);
// a field of the wrong type falls back to its default; a planned window that cannot be read
// makes the whole state full maintenance, like the app's damaged plan.
function stateFrom(text, now) {
  if (text === null || text === undefined) return OFF;
  if (!text.trim()) return on("full", null, null, now);
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return on("full", null, null, now);
  }
  if (!isObject(data)) return on("full", null, null, now);
  const lock =
    data.active === false
      ? null
      : {
          mode: MODES.has(data.mode) ? data.mode : "full",
          retry: validRetry(data.retry),
          endsAt: data.ends_at === undefined || data.ends_at === null ? null : instant(data.ends_at),
        };
  let schedule = null;
  if (data.scheduled !== undefined && data.scheduled !== null) {
    schedule = scheduleFrom(data.scheduled);
    if (schedule === null) {
      return lock === null ? on("full", null, null, now) : on("full", lock.retry, lock.endsAt, now);
    }
  }
  if (lock !== null) return on(lock.mode, lock.retry, lock.endsAt, now);
  if (schedule === null) return OFF;
  const over = schedule.endsAt !== null && now >= schedule.endsAt;
  if (over && schedule.autoOff) return OFF;
  // The instant the answer changes by itself: the window starts, or (auto_off) ends.
  const windowAt = now < schedule.startsAt ? schedule.startsAt : schedule.autoOff ? schedule.endsAt : null;
  const state = now >= schedule.startsAt ? on(schedule.mode, null, schedule.endsAt, now) : OFF;
  return windowAt === null ? state : { ...state, windowAt, document: text };
}

function on(mode, retry, endsAt, now) {
  let retryAfter = SETTINGS.defaultRetry;
  if (retry !== null) retryAfter = retry;
  else if (endsAt !== null && now < endsAt) retryAfter = Math.max(1, Math.ceil((endsAt - now) / 1000));
  return { active: true, mode, retryAfter };
}

function scheduleFrom(value) {
  if (!isObject(value) || typeof value.starts_at !== "string") return null;
  const startsAt = instant(value.starts_at);
  const endsAt = value.ends_at === undefined || value.ends_at === null ? null : instant(value.ends_at);
  const mode = value.mode === undefined || value.mode === null ? "full" : value.mode;
  const autoOff = value.auto_off === undefined || value.auto_off === null ? false : value.auto_off;
  if (startsAt === null || (value.ends_at && endsAt === null) || !MODES.has(mode) || typeof autoOff !== "boolean") {
    return null;
  }
  return { startsAt, endsAt, mode, autoOff };
}

function validRetry(value) {
  return Number.isInteger(value) && value >= 0 && value <= SETTINGS.maxSeconds ? value : null;
}

// An ISO 8601 instant with its zone, in the forms the app reads; milliseconds since the epoch.
function instant(value) {
  if (typeof value !== "string") return null;
  const match = INSTANT.exec(value.trim());
  if (match === null || match[8] === undefined) return null;
  const [year, month, day, hour, minute, second, fraction, zone] = match.slice(1);
  let offset = 0;
  if (zone !== "Z" && zone !== "z") {
    const hours = Number(zone.slice(1, 3));
    const minutes = zone.length > 3 ? Number(zone.slice(-2)) : 0;
    if (hours > 23 || minutes > 59) return null;
    offset = (zone[0] === "-" ? -1 : 1) * (hours * 60 + minutes) * 60000;
  }
  const [y, mo, d, h, mi, s] = [year, month, day, hour, minute, second || "0"].map(Number);
  const time = Date.UTC(y, mo - 1, d, h, mi, s, Number((fraction || "0").slice(0, 3).padEnd(3, "0")));
  const check = new Date(Date.UTC(y, mo - 1, d));
  // Date.UTC rolls 2026-02-30 over into March: the app refuses such a date.
  if (y < 1 || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    return null;
  }
  return time - offset;
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// -- who passes --------------------------------------------------------------------------------

function passes(request, state, path) {
  if (inPaths(path, SETTINGS.openPaths)) return true;
  const method = request.method.toUpperCase();
  if (method === "OPTIONS" && request.headers.has("Access-Control-Request-Method")) return true;
  if (state.mode === "readonly" && SAFE_METHODS.has(method)) return true;
  if (NETWORKS.length && allowedAddress(request.headers.get("CF-Connecting-IP"))) return true;
  // Present is enough here: the origin verifies the cookie and the bypass header (a deploy's
  // verify step), and refuses a forged one itself.
  const header = request.headers.get(SETTINGS.bypassHeader);
  if (header && header.trim()) return true;
  return hasCookie(request.headers.get("Cookie"), SETTINGS.cookie);
}

// The path as the app sees it: percent-decoded, with one leading slash.
function appPath(pathname) {
  let path = pathname;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    // not valid UTF-8 once decoded: compare it as it came
  }
  return "/" + path.replace(/^\/+/, "");
}

function inPaths(path, paths) {
  return paths.exact.includes(path) || paths.under.some((prefix) => path.startsWith(prefix));
}

function isApiPath(path) {
  return inPaths(path, SETTINGS.apiPaths);
}

function hasCookie(header, name) {
  if (!header || !header.includes(name)) return false;
  for (const pair of header.slice(0, SETTINGS.maxCookieHeader).split(";")) {
    const separator = pair.indexOf("=");
    if (separator >= 0 && pair.slice(0, separator).trim() === name && pair.slice(separator + 1).trim()) {
      return true;
    }
  }
  return false;
}

function allowedAddress(text) {
  if (!text || text.length > SETTINGS.maxAddressLength) return false;
  let address = parseAddress(text.split("%", 1)[0]);
  if (address === null) return false;
  if (address.version === 6 && address.value >> 32n === 0xffffn) {
    address = { version: 4, value: address.value & 0xffffffffn }; // IPv4-mapped
  }
  const width = address.version === 4 ? 32n : 128n;
  return NETWORKS.some(
    (network) =>
      network.version === address.version && address.value >> (width - network.bits) === network.network >> (width - network.bits),
  );
}

function parseAddress(text) {
  const ipv4 = parseIPv4(text);
  if (ipv4 !== null) return { version: 4, value: ipv4 };
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || text.split("::").length > 2) return null;
  let [head, tail] = text.includes("::") ? text.split("::") : [text, null];
  const groups = (part) => (part ? part.split(":") : []);
  let [left, right] = [groups(head), groups(tail)];
  const last = tail === null ? left : right;
  if (last.length && last[last.length - 1].includes(".")) {
    const embedded = parseIPv4(last.pop());
    if (embedded === null) return null;
    last.push((embedded >> 16n).toString(16), (embedded & 0xffffn).toString(16));
  }
  const missing = 8 - left.length - right.length;
  if (tail === null ? missing !== 0 : missing < 1) return null;
  let value = 0n;
  for (const group of [...left, ...Array(tail === null ? 0 : missing).fill("0"), ...right]) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return null;
    value = (value << 16n) | BigInt("0x" + group);
  }
  return { version: 6, value };
}

function parseIPv4(text) {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

// Whether an Accept header prefers JSON over HTML: the app's reading, with the app's bounds (only
// the first characters are read, and only so many look-alikes of one range are skipped).
function prefersJson(accept) {
  if (!accept) return false;
  accept = accept.slice(0, SETTINGS.acceptPrefix).toLowerCase();
  if (!accept.includes("json") && !accept.includes("application/*")) return false;
  const qualities = SETTINGS.jsonTypes.map((media) => rangeQuality(accept, media)).filter((q) => q !== null);
  let json = qualities.length ? Math.max(...qualities) : null;
  if (json === null) json = rangeQuality(accept, "application/*");
  let html = rangeQuality(accept, "text/html");
  if (html === null) html = rangeQuality(accept, "text/*");
  const anything = rangeQuality(accept, "*/*");
  if (json === null) json = anything;
  if (html === null) html = anything;
  return (json || 0) > (html || 0);
}

function rangeQuality(accept, media) {
  let start = 0;
  for (let entry = 0; entry < SETTINGS.acceptEntries; entry++) {
    const found = accept.indexOf(media, start);
    if (found < 0) return null;
    const end = found + media.length;
    const after = accept.slice(end, end + 1);
    if ((found === 0 || ", \t".includes(accept[found - 1])) && ["", ",", ";", " ", "\t"].includes(after)) {
      const parametersEnd = accept.indexOf(",", end);
      return quality(accept.slice(end, parametersEnd >= 0 ? parametersEnd : accept.length));
    }
    start = end;
  }
  return null;
}

function quality(parameters) {
  for (const parameter of parameters.split(";").slice(0, 4)) {
    const separator = parameter.indexOf("=");
    const name = separator < 0 ? parameter : parameter.slice(0, separator);
    if (name.trim() === "q") {
      const value = separator < 0 ? "" : parameter.slice(separator + 1).trim();
      return /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/.test(value) ? Number(value) : 0;
    }
  }
  return 1;
}

// -- answers -------------------------------------------------------------------------------------

// The origin's answer, or the page when the origin cannot answer: it is down or unreachable
// (an exception, 502, 504, Cloudflare's 52x), or answers 503 without the app's marker header
// (the app's own 503 passes unchanged: it knows best).
async function forward(request, state, asJson) {
  let response;
  try {
    response = await fetchOrigin(request);
  } catch (error) {
    console.warn("origin unreachable:", String(error));
    return failed(state, asJson);
  }
  const status = response.status;
  if (status === 502 || status === 504 || (status >= 520 && status <= 529) || (status === 503 && !response.headers.has(SETTINGS.marker))) {
    await response.body?.cancel();
    return failed(state, asJson);
  }
  return response;
}

// A pooled connection the origin closed just as it was reused fails at once, though the origin is
// up: a GET or HEAD is sent once more, as browsers and proxies do. Anything else may already have
// had its effect, so it is never sent twice.
async function fetchOrigin(request) {
  try {
    return await fetch(request);
  } catch (error) {
    if (request.method !== "GET" && request.method !== "HEAD") throw error;
    return await fetch(request);
  }
}

function failed(state, asJson) {
  const blocking = state.active && BLOCKING_MODES.has(state.mode);
  return answer("full", asJson, blocking ? state.retryAfter : SETTINGS.defaultRetry);
}

// The app's own answer, rendered when the Worker was generated, with this moment's Retry-After.
function answer(kind, asJson, retryAfter) {
  const prebuilt = SETTINGS.answers[kind][asJson ? "json" : "page"];
  const headers = new Headers(prebuilt.headers);
  headers.set("Retry-After", String(retryAfter));
  let body = prebuilt.body;
  if (asJson) body = JSON.stringify({ ...JSON.parse(body), retry_after: retryAfter });
  return new Response(body, { status: 503, headers });
}
