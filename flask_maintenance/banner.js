/* flask-maintenance banner, for pages the app does not render (a single-page app, a CDN):
     <script src="https://example.com/_maintenance/banner.js" data-interval="60" async></script>
   It polls the status path beside it and shows a banner for a planned window (in the visitor's
   local time), read-only mode and banner mode; dismissed, it stays away until the news changes.
   Texts are set with textContent only: nothing from the server is ever parsed as HTML. */
(() => {
  "use strict";
  const me = document.currentScript;
  if (!me) return;
  const status = me.src.replace(/\/banner\.js([?#].*)?$/, "");
  // At most a day: a browser's timer wraps past 2^31 ms (24.8 days) and would fire at once.
  const every = Math.min(86400, Math.max(1, Number(me.dataset.interval) || 60)) * 1000;
  const KEY = "flask-maintenance-dismissed";
  let bar = null;

  const when = (iso) =>
    new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

  const describe = (s) => {
    if (s.active) {
      const lead = {
        readonly: "Read-only mode: changes cannot be saved right now.",
        full: "Down for maintenance.",
      }[s.mode] || "Maintenance in progress.";
      const end = s.overdue ? " Taking longer than expected."
        : s.ends_at ? ` Until ${when(s.ends_at)}.` : "";
      return lead + (s.message ? ` ${s.message}` : "") + end;
    }
    const w = s.scheduled;
    if (!w) return null;
    const end = w.ends_at ? ` to ${when(w.ends_at)}` : "";
    const mode = w.mode === "readonly" ? " (read-only)" : "";
    return `Scheduled maintenance${mode}: ${when(w.starts_at)}${end}.` +
      (w.message ? ` ${w.message}` : "");
  };

  const dismissed = () => {
    try { return sessionStorage.getItem(KEY); } catch (e) { return null; }
  };

  const hide = () => {
    if (bar) bar.remove();
    bar = null;
  };

  const show = (text) => {
    if (!bar) {
      bar = document.createElement("div");
      bar.className = "maintenance-banner";
      bar.setAttribute("role", "status");
      bar.style.cssText = "position:sticky;top:0;z-index:2147483647;display:flex;gap:1em;" +
        "align-items:center;padding:.6em 1em;background:#fef3c7;color:#1f2937;" +
        "border-bottom:2px solid #b45309;font:15px/1.4 system-ui,sans-serif";
      const p = document.createElement("p");
      p.style.cssText = "margin:0;flex:1";
      const close = document.createElement("button");
      close.type = "button";
      close.textContent = "\u00d7";
      close.setAttribute("aria-label", "Dismiss maintenance notice");
      close.style.cssText = "font:inherit;font-size:1.4em;line-height:1;padding:0 .3em;" +
        "background:none;border:0;color:inherit;cursor:pointer";
      close.addEventListener("click", () => {
        try { sessionStorage.setItem(KEY, p.textContent); } catch (e) { /* private mode */ }
        hide();
      });
      bar.append(p, close);
      document.body.prepend(bar);
    }
    bar.firstChild.textContent = text;
  };

  const update = (s) => {
    const text = s && typeof s === "object" ? describe(s) : null;
    if (!text || text === dismissed()) hide();
    else show(text);
  };

  const poll = () => {
    fetch(status, { cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then(update, () => {}) // offline, or an error page: keep what is shown
      .finally(() => setTimeout(poll, every));
  };

  if (document.body) poll();
  else document.addEventListener("DOMContentLoaded", poll);
})();
