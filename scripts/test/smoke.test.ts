import { execFile } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../build";
import { LOCAL_VERSION_METADATA } from "../../worker/src/contract";
import { runSmoke, versionOverrideHeader } from "../smoke";
import { startLocalStack, type LocalStack } from "../start";

const CHECKS = ["health", "session create", "session read", "session delete", "session refresh", "sign out all", "flag put", "flag evaluate", "flag delete", "cache read"];

/** `npm run smoke` as a child process, as a user or CI runs it. */
async function smokeCli(args: string[], env: Record<string, string> = {}) {
  return promisify(execFile)("npm", ["run", "--silent", "smoke", "--", ...args], { cwd: ROOT, env: { ...process.env, ADMIN_TOKEN: "", ...env } }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
}

/** The mark (✓ ✗ –) each check got, by name. */
function marks(stdout: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const name = CHECKS.find((check) => line.slice(2) === check || line.slice(2).startsWith(`${check} `));
    if (name && /^[✓✗–] /u.test(line)) found[name] = line[0]!;
  }
  return found;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("npm run smoke against the real local stack", () => {
  let origin: Server;
  let stack: LocalStack;

  beforeAll(async () => {
    origin = createServer((request, response) => {
      const product = /^\/products\/([^/]+)$/.exec(request.url ?? "");
      response.writeHead(product ? 200 : 404, { "content-type": "application/json" });
      response.end(JSON.stringify(product ? { id: product[1], title: "Smoke-tested widget" } : { message: "not found" }));
    });
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "local-smoke-token", originUrl: await listen(origin) });
  }, 60_000);

  afterAll(async () => {
    await stack?.dispose();
    origin?.close();
  });

  it("passes every check and leaves no session or flag behind", async () => {
    const { code, stdout } = await smokeCli(["--url", stack.url], { ADMIN_TOKEN: stack.adminToken });
    expect(marks(stdout)).toEqual(Object.fromEntries(CHECKS.map((check) => [check, "✓"])));
    expect(stdout).toMatch(/^✓ cache read +product 1: X-Cache MISS/m);
    expect(stdout).toMatch(/^✓ sign out all +listed 2, revoked 2; each now 404/m);
    expect(stdout).toContain("10 passed, 0 failed, 0 skipped");
    expect(code).toBe(0);
    expect((await stack.mf.getKVNamespace("SESSIONS").then((kv) => kv.list())).keys).toEqual([]);
    expect((await stack.mf.getKVNamespace("CONFIG").then((kv) => kv.list({ prefix: "flag:smoke-" }))).keys).toEqual([]);
  }, 60_000);

  it("skips the admin checks, saying why, without a token", async () => {
    const { code, stdout } = await smokeCli(["--url", stack.url]);
    expect(stdout).toMatch(/^– session create +skipped: no admin token \(pass --admin-token or set ADMIN_TOKEN\)$/m);
    expect(stdout).toContain("2 passed, 0 failed, 8 skipped");
    expect(code).toBe(0);
  }, 60_000);

  it("pins every request to --version-id and checks that version answers", async () => {
    const { code, stdout } = await smokeCli(["--url", stack.url, "--version-id", LOCAL_VERSION_METADATA.id, "--worker", "kv-worker-stack-dev-worker"]);
    expect(stdout).toContain(`through Cloudflare-Workers-Version-Overrides: kv-worker-stack-dev-worker="${LOCAL_VERSION_METADATA.id}"`);
    expect(stdout).toMatch(new RegExp(`^✓ health +local, bundle [0-9a-f]{12}, version ${LOCAL_VERSION_METADATA.id}`, "m"));
    expect(code).toBe(0);
  }, 60_000);

  it("fails health when another version than --version-id answers", async () => {
    const versionOverride = { workerName: "kv-worker-stack-dev-worker", versionId: "5f1d6b0e-8c1a-4e2b-9d3c-7a6f5e4d3c2b" };
    const results = await runSmoke({ url: stack.url, versionOverride, rolloutTimeoutMs: 0 });
    expect(results[0]).toMatchObject({ status: "fail", detail: expect.stringMatching(`^answered by version ${LOCAL_VERSION_METADATA.id}, expected ${versionOverride.versionId}`) });
  }, 60_000);

  it("fails health when the deployment serves another bundle than expected", async () => {
    const results = await runSmoke({ url: stack.url, adminToken: stack.adminToken, expectSha256: "0".repeat(64), rolloutTimeoutMs: 0 });
    expect(results[0]).toMatchObject({ name: "health", status: "fail", detail: expect.stringMatching(/^serves bundle [0-9a-f]{64}, expected 0{64}$/) });
  }, 60_000);
});

describe("npm run smoke against a broken deployment", () => {
  const TOKEN = "broken-token";
  const sessions = new Map<string, unknown>();
  const flags = new Map<string, unknown>();
  /** Extra faults a test switches on: "flag-writes" stores the flag but answers 500, "session-deletes" answers 204 and keeps the session. */
  const faults = new Set<string>();
  let server: Server;
  let url: string;

  /** Healthy everywhere except GET /sessions/:id, which answers 200 with somebody else's session; no origin behind /api/products. */
  async function handle(request: IncomingMessage, response: ServerResponse) {
    const send = (status: number, body?: unknown) => {
      response.writeHead(status, body === undefined ? {} : { "content-type": "application/json" });
      response.end(body === undefined ? undefined : JSON.stringify(body));
    };
    let raw = "";
    for await (const chunk of request) raw += chunk;
    const { pathname } = new URL(request.url ?? "/", "http://broken");
    const route = `${request.method} ${pathname}`;
    if (route === "GET /health") return send(200, { status: "ok", environment: "broken", bundleSha256: null });
    if (pathname.startsWith("/api/products/")) return send(502, { error: "origin answered 500", code: "origin_error" });
    const refreshed = /^\/sessions\/([\w-]+)\/refresh$/.exec(pathname)?.[1];
    if (refreshed && request.headers.authorization === `Bearer ${refreshed}`) {
      return sessions.has(refreshed) ? send(200, { sessionId: refreshed, expiresAt: "2026-11-25T00:00:00.000Z" }) : send(404, { error: "no such session", code: "not_found" });
    }
    if (request.method !== "GET" && request.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: "unauthorized", code: "unauthorized" });
    const user = /^\/users\/([^/]+)\/sessions$/.exec(pathname)?.[1];
    if (user) {
      const ids = [...sessions].filter(([, s]) => (s as { userId: string }).userId === decodeURIComponent(user)).map(([id]) => id);
      if (request.method === "GET") return send(200, { sessions: ids.map((id) => ({ sessionIdPrefix: id.slice(0, 8) })) });
      for (const id of ids) sessions.delete(id);
      return send(200, { revoked: ids.length, complete: true });
    }
    const session = /^\/sessions\/([\w-]+)$/.exec(pathname)?.[1];
    const flag = /^\/api\/features\/([\w.:-]+)$/.exec(pathname)?.[1];
    if (route === "POST /sessions") {
      const id = String(sessions.size + 1).padStart(32, "s");
      sessions.set(id, JSON.parse(raw));
      return send(201, { sessionId: id, expiresAt: "2026-11-25T00:00:00.000Z" });
    }
    if (session && request.method === "GET") return sessions.has(session) ? send(200, { userId: "someone-else", email: "x@example.com" }) : send(404, { error: "no such session", code: "not_found" });
    if (session && request.method === "DELETE") {
      if (!faults.has("session-deletes")) sessions.delete(session);
      return send(204);
    }
    if (flag && request.method === "PUT") {
      flags.set(flag, JSON.parse(raw));
      return faults.has("flag-writes") ? send(500, { error: "boom", code: "internal_error" }) : send(200, { name: flag, ...(JSON.parse(raw) as object) });
    }
    if (flag && request.method === "GET") return send(200, { name: flag, enabled: flags.has(flag), reason: "STATIC" });
    if (flag && request.method === "DELETE") {
      flags.delete(flag);
      return send(204);
    }
    return send(404, { error: "not found", code: "not_found" });
  }

  beforeAll(async () => {
    server = createServer((request, response) => void handle(request, response));
    url = await listen(server);
  });
  afterAll(() => server.close());

  it("reports exactly the broken check, still cleans up, and exits non-zero", async () => {
    const { code, stdout } = await smokeCli(["--url", url, "--admin-token", TOKEN]);
    expect(marks(stdout)).toEqual({ ...Object.fromEntries(CHECKS.map((check) => [check, "✓"])), "session read": "✗", "cache read": "–" });
    expect(stdout).toMatch(/^✗ session read +read back \{"userId":"someone-else".*\}, expected the session just created/m);
    expect(stdout).toMatch(/^– cache read +skipped: no origin answers \(502 origin_error\)$/m);
    expect(stdout).toContain("8 passed, 1 failed, 1 skipped");
    expect(code).toBe(1);
    expect([...sessions.keys(), ...flags.keys()]).toEqual([]);
  }, 60_000);

  it("removes a flag whose write answered an error, since it may still have been stored", async () => {
    faults.add("flag-writes");
    try {
      const results = await runSmoke({ url, adminToken: TOKEN });
      expect(results.filter((result) => result.name.startsWith("flag")).map((result) => [result.name, result.status])).toEqual([
        ["flag put", "fail"],
        ["flag evaluate", "skip"],
        ["flag delete", "skip"],
      ]);
      expect([...flags.keys()]).toEqual([]);
    } finally {
      faults.clear();
    }
  });

  it("fails session delete when the session can still be read afterwards", async () => {
    faults.add("session-deletes");
    try {
      const results = await runSmoke({ url, adminToken: TOKEN });
      expect(results.find((result) => result.name === "session delete")).toMatchObject({ status: "fail", detail: expect.stringMatching(/answered 200, expected 404/) });
    } finally {
      faults.clear();
      sessions.clear();
    }
  });

  it("waits for a fresh deployment to serve the expected bundle before it fails health", async () => {
    let healthChecks = 0;
    const rollingOut = createServer((request, response) => {
      if (request.url === "/health") healthChecks += 1;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ status: "ok", environment: "prod", bundleSha256: healthChecks === 1 ? "old" : "new" }));
    });
    try {
      const results = await runSmoke({ url: await listen(rollingOut), expectSha256: "new", rolloutTimeoutMs: 5_000 });
      expect(results[0]).toMatchObject({ name: "health", status: "pass" });
      expect(healthChecks).toBe(2);
    } finally {
      rollingOut.close();
    }
  }, 30_000);

  it("fails every check, one line each, when nothing listens", async () => {
    const closed = createServer();
    const deadUrl = await listen(closed);
    closed.close();
    const { code, stdout } = await smokeCli(["--url", deadUrl, "--admin-token", TOKEN]);
    expect(stdout).toMatch(/^✗ health +GET \/health: ECONNREFUSED/m);
    expect(stdout).toMatch(/^– session read +skipped: no session was created$/m);
    expect(code).toBe(1);
  }, 60_000);
});

describe("the version override header", () => {
  it("is an RFC 8941 dictionary: the Worker's name as key, the version id as a quoted String", () => {
    expect(versionOverrideHeader({ workerName: "kv-worker-stack-prod-worker", versionId: "dc8dcd28-271b-4367-9840-6c244f84cb40" })).toBe(
      'kv-worker-stack-prod-worker="dc8dcd28-271b-4367-9840-6c244f84cb40"',
    );
    expect(versionOverrideHeader({ workerName: "w", versionId: 'a"b\\c' })).toBe('w="a\\"b\\\\c"');
  });

  it("refuses what a dictionary cannot hold, rather than sending a header Cloudflare would ignore", () => {
    expect(() => versionOverrideHeader({ workerName: "1-worker", versionId: "v" })).toThrow(/cannot be a Cloudflare-Workers-Version-Overrides key/);
    expect(() => versionOverrideHeader({ workerName: "Worker", versionId: "v" })).toThrow(/key/);
    expect(() => versionOverrideHeader({ workerName: "w", versionId: "v\u00e9" })).toThrow(/String cannot hold/);
  });

  it("goes on every request the smoke test sends", async () => {
    const seen: (string | undefined)[] = [];
    const server = createServer((request, response) => {
      seen.push(request.headers["cloudflare-workers-version-overrides"] as string | undefined);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ status: "ok", versionId: "v-1", id: "1", title: "t" }));
    });
    try {
      await runSmoke({ url: await listen(server), versionOverride: { workerName: "my-worker", versionId: "v-1" }, rolloutTimeoutMs: 0 });
    } finally {
      server.close();
    }
    expect(seen.length).toBeGreaterThan(1);
    expect(new Set(seen)).toEqual(new Set(['my-worker="v-1"']));
  });
});
