// Runs Workers written by `flask maintenance edge-worker` in Miniflare (Cloudflare's workerd),
// for tests/test_edge.py. Argument: JSON {"ci": folder with node_modules/miniflare, "sites":
// [{"name", "script", "upstream", "kv"}]}. Each site gets a Miniflare of its own (its own
// upstream), all started at once; then one JSON line maps each name to its URL. Each line read
// from stdin afterwards, {"site", "state"}, puts (a string) or deletes (null) the site's KV key
// "state" and is answered "ok". At the end of stdin everything stops.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import path from "node:path";

const config = JSON.parse(process.argv[2]);
const { Miniflare, Log, LogLevel } = createRequire(path.join(config.ci, "package.json"))("miniflare");

// Miniflare's log (and the Workers' console) to stderr: stdout carries the protocol.
class StderrLog extends Log {
  log(message) {
    process.stderr.write(message + "\n");
  }
}

const sites = {};
for (const site of config.sites) {
  sites[site.name] = new Miniflare({
    modules: true,
    scriptPath: site.script,
    modulesRoot: path.dirname(site.script),
    upstream: site.upstream,
    kvNamespaces: site.kv ? ["MAINTENANCE"] : [],
    compatibilityDate: "2025-07-01",
    host: "127.0.0.1",
    cf: false, // a placeholder request.cf, instead of fetching Cloudflare's from the internet
    log: new StderrLog(LogLevel.WARN),
  });
}
const urls = {};
for (const [name, mf] of Object.entries(sites)) {
  urls[name] = String(await mf.ready);
}
console.log(JSON.stringify(urls));

for await (const line of createInterface({ input: process.stdin })) {
  const { site, state } = JSON.parse(line);
  const kv = await sites[site].getKVNamespace("MAINTENANCE");
  if (state === null) await kv.delete("state");
  else await kv.put("state", state);
  console.log("ok");
}
await Promise.all(Object.values(sites).map((mf) => mf.dispose()));
