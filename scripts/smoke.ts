/**
 * Black-box checks of a running deployment, local (`npm start`) or real:
 * health, a session's life, a throw-away flag's life and a product read.
 * Whatever it writes it removes again, even when a check fails.
 *
 *   npm run smoke -- --url <base> [--admin-token <token>] [--expect-sha256 <hash>] [--product <id>]
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { ApiResponseError, createApiClient } from "../client/index.ts";
import { CliError, firstSet, isMain, parseFlags, readDevVars, runCommand } from "./lib/cli";

export interface SmokeOptions {
  /** Base URL of the deployment, e.g. http://127.0.0.1:8787. */
  url: string;
  /** Without it the session and flag checks (admin routes) are skipped. */
  adminToken?: string | undefined;
  /** When set, /health must report this bundle; a fresh deployment is waited for up to `rolloutTimeoutMs`. */
  expectSha256?: string | undefined;
  /** A product the origin knows (default "1"). */
  productId?: string;
  requestTimeoutMs?: number;
  rolloutTimeoutMs?: number;
  log?: (line: string) => void;
}

export type CheckStatus = "pass" | "fail" | "skip";
export interface SmokeResult {
  name: string;
  status: CheckStatus;
  detail: string;
  ms: number;
}

const SMOKE_USER = { userId: "smoke-test", email: "smoke-test@example.com" };
const ROLLOUT_POLL_MS = 2_000;

/** A check that cannot run here; not a failure. */
class Skip extends Error {}

export async function runSmoke(options: SmokeOptions): Promise<SmokeResult[]> {
  const log = options.log ?? (() => {});
  const results: SmokeResult[] = [];
  // The typed client sends the admin token only to the routes that need it.
  const api = createApiClient({ baseUrl: options.url, adminToken: options.adminToken, timeoutMs: options.requestTimeoutMs ?? 10_000 });

  const record = (name: string, status: CheckStatus, detail: string, ms: number) => {
    results.push({ name, status, detail, ms });
    const mark = status === "pass" ? "✓" : status === "fail" ? "✗" : "–";
    const timing = status === "skip" ? "" : ` (${ms} ms)`;
    log(`${mark} ${name.padEnd(15)}${detail ? ` ${detail}` : ""}${timing}`);
  };
  /** Runs one check; it passes unless it throws. Returns whether it passed. */
  const check = async (name: string, run: () => Promise<string>) => {
    const started = performance.now();
    try {
      record(name, "pass", await run(), Math.round(performance.now() - started));
      return true;
    } catch (error) {
      const status = error instanceof Skip ? "skip" : "fail";
      record(name, status, status === "skip" ? `skipped: ${(error as Error).message}` : (error as Error).message, Math.round(performance.now() - started));
      return false;
    }
  };
  const skip = (name: string, reason: string) => record(name, "skip", `skipped: ${reason}`, 0);
  const cleanup = async (what: string, path: string, remove: () => Promise<void>) => {
    const error = await remove().then(() => undefined, (failure: Error) => failure);
    if (error) log(`! could not remove ${what} (${error.message}); delete it by hand: DELETE ${path}`);
  };

  await check("health", async () => {
    const deadline = Date.now() + (options.expectSha256 ? (options.rolloutTimeoutMs ?? 60_000) : 0);
    for (;;) {
      try {
        const health = await api.health();
        if (health.status !== "ok") throw new Error(`status is ${JSON.stringify(health.status)}, expected "ok"`);
        const sha = typeof health.bundleSha256 === "string" ? health.bundleSha256 : undefined;
        if (options.expectSha256 && sha !== options.expectSha256) {
          throw new Error(`serves bundle ${sha ?? "(none reported)"}, expected ${options.expectSha256}`);
        }
        return `${String(health.environment ?? "?")}, bundle ${sha ? sha.slice(0, 12) : "(not reported)"}`;
      } catch (error) {
        // A deployment reaches every location within seconds; until then the old version may answer.
        if (Date.now() + ROLLOUT_POLL_MS > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, ROLLOUT_POLL_MS));
      }
    }
  });

  const noToken = "no admin token (pass --admin-token or set ADMIN_TOKEN)";
  if (!options.adminToken) {
    for (const name of ["session create", "session read", "session delete", "flag put", "flag evaluate", "flag delete"]) skip(name, noToken);
  } else {
    let sessionId: string | undefined;
    let sessionGone = false;
    try {
      await check("session create", async () => {
        const created = await api.createSession({ ...SMOKE_USER, ttlSeconds: 60 });
        if (typeof created.sessionId !== "string") throw new Error(`201 without a sessionId: ${JSON.stringify(created)}`);
        sessionId = created.sessionId;
        return `expires ${String(created.expiresAt)}`;
      });
      if (!sessionId) {
        skip("session read", "no session was created");
        skip("session delete", "no session was created");
      } else {
        const id = sessionId;
        const path = `/sessions/${encodeURIComponent(id)}`;
        await check("session read", async () => {
          const session = await api.getSession(id);
          if (!session) throw new Error(`GET ${path} answered 404, expected 200`);
          if (session.userId !== SMOKE_USER.userId || session.email !== SMOKE_USER.email) {
            throw new Error(`read back ${JSON.stringify(session)}, expected the session just created`);
          }
          return "";
        });
        await check("session delete", async () => {
          await api.deleteSession(id);
          sessionGone = true;
          if (await api.getSession(id)) throw new Error(`GET ${path} answered 200, expected 404`);
          return "read afterwards gives 404";
        });
      }
    } finally {
      const id = sessionId;
      if (id && !sessionGone) await cleanup(`session ${id}`, `/sessions/${encodeURIComponent(id)}`, () => api.deleteSession(id));
    }

    const flag = `smoke-${randomBytes(6).toString("hex")}`;
    const flagPath = `/api/features/${flag}`;
    let flagGone = false;
    try {
      const written = await check("flag put", async () => {
        const stored = await api.putFlag(flag, { enabled: true });
        if (stored.name !== flag || stored.enabled !== true) throw new Error(`answered ${JSON.stringify(stored)}`);
        return flag;
      });
      if (!written) {
        skip("flag evaluate", "the flag was not written");
        skip("flag delete", "the flag was not written");
      } else {
        await check("flag evaluate", async () => {
          const evaluation = await api.evaluateFlag(flag, SMOKE_USER.userId);
          if (evaluation.enabled !== true) throw new Error(`evaluated to ${JSON.stringify(evaluation)}, expected enabled: true`);
          return `enabled (${String(evaluation.reason)})`;
        });
        await check("flag delete", async () => {
          await api.deleteFlag(flag);
          flagGone = true;
          return "";
        });
      }
    } finally {
      // Also after a failed or timed-out PUT, which may still have written the flag.
      if (!flagGone) await cleanup(`flag ${flag}`, flagPath, () => api.deleteFlag(flag));
    }
  }

  await check("cache read", async () => {
    const productId = options.productId ?? "1";
    const { cache } = await api.getProduct(productId).catch((error: unknown) => {
      if (error instanceof ApiResponseError && (error.status === 502 || error.status === 503)) {
        throw new Skip(`no origin answers (${error.status} ${error.code ?? ""})`.trim());
      }
      throw error;
    });
    if (!cache) throw new Error("200 without an X-Cache header");
    return `product ${productId}: X-Cache ${cache}`;
  });

  const counts = summarize(results);
  log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  return results;
}

export function summarize(results: SmokeResult[]) {
  const count = (status: CheckStatus) => results.filter((result) => result.status === status).length;
  return { passed: count("pass"), failed: count("fail"), skipped: count("skip") };
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

async function main(): Promise<number> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: {
        url: { type: "string" },
        "admin-token": { type: "string" },
        "expect-sha256": { type: "string" },
        product: { type: "string" },
      },
    }),
  );
  if (!values.url) throw new CliError("usage: npm run smoke -- --url <base> [--admin-token <token>] [--expect-sha256 <hash>] [--product <id>]");
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new CliError(`--url ${values.url} is not a URL`);
  }
  // .dev.vars is what `npm start` reads its token from; it says nothing about a remote deployment.
  const devVars = LOCAL_HOSTS.has(url.hostname) ? readDevVars() : {};
  const adminToken = firstSet(values["admin-token"], process.env.ADMIN_TOKEN, devVars.ADMIN_TOKEN);
  console.log(`Smoke test of ${values.url}`);
  const results = await runSmoke({
    url: values.url,
    adminToken,
    expectSha256: values["expect-sha256"],
    ...(values.product ? { productId: values.product } : {}),
    log: (line) => console.log(line),
  });
  return summarize(results).failed > 0 ? 1 : 0;
}

if (isMain(import.meta.url)) {
  runCommand("smoke", async () => {
    process.exitCode = await main();
  });
}
