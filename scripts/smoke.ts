/**
 * Black-box checks of a running deployment, local (`npm start`) or real:
 * health, a session's life, refresh and sign-out-everywhere of a throw-away
 * user, a throw-away flag's life and a product read.
 * Whatever it writes it removes again, even when a check fails.
 *
 *   npm run smoke -- --url <base> [--admin-token <token>] [--expect-sha256 <hash>] [--product <id>]
 *                    [--version-id <id> [--worker <name> | --stack <name>]]
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { ApiResponseError, type ApiClient, createApiClient } from "../client/index.ts";
import { loadStackConfig } from "../infra/stack-file";
import { CliError, firstSet, isMain, parseFlags, readDevVars, runCommand } from "./lib/cli";

/** The request header that sends a request to one version of a Worker in its active deployment. */
export const VERSION_OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides";

/** A request pinned to one version: of which Worker, and which version. */
export interface VersionOverride {
  workerName: string;
  versionId: string;
}

/**
 * The header's value: an RFC 8941 dictionary whose key is the Worker's name
 * and whose value is the version id as a String (quoted), e.g.
 * `my-worker="dc8dcd28-271b-4367-9840-6c244f84cb40"`. A Worker name that is
 * not a valid dictionary key, or an id with characters a String cannot hold,
 * would make Cloudflare ignore the header and route by percentage instead,
 * so both are refused here.
 */
export function versionOverrideHeader({ workerName, versionId }: VersionOverride): string {
  if (!/^[a-z*][a-z0-9_\-.*]*$/.test(workerName)) {
    throw new CliError(`Worker name "${workerName}" cannot be a ${VERSION_OVERRIDE_HEADER} key (lower-case, starting with a letter)`);
  }
  if (!/^[\x20-\x7e]*$/.test(versionId)) throw new CliError(`version id ${JSON.stringify(versionId)} has characters a structured-header String cannot hold`);
  return `${workerName}="${versionId.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface SmokeOptions {
  /** Base URL of the deployment, e.g. http://127.0.0.1:8787. */
  url: string;
  /** Without it the session and flag checks (admin routes) are skipped. */
  adminToken?: string | undefined;
  /** When set, /health must report this bundle; a fresh deployment is waited for up to `rolloutTimeoutMs`. */
  expectSha256?: string | undefined;
  /**
   * Send every request to this version (it must be in the active deployment,
   * at any percentage, 0 included); /health must report it as versionId.
   */
  versionOverride?: VersionOverride | undefined;
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
  // The typed client sends the admin token only to the routes that need it, and the override to every route.
  const api = createApiClient({
    baseUrl: options.url,
    adminToken: options.adminToken,
    timeoutMs: options.requestTimeoutMs ?? 10_000,
    ...(options.versionOverride ? { headers: { [VERSION_OVERRIDE_HEADER]: versionOverrideHeader(options.versionOverride) } } : {}),
  });

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
    const waits = options.expectSha256 !== undefined || options.versionOverride !== undefined;
    const deadline = Date.now() + (waits ? (options.rolloutTimeoutMs ?? 60_000) : 0);
    for (;;) {
      try {
        const health = await api.health();
        if (health.status !== "ok") throw new Error(`status is ${JSON.stringify(health.status)}, expected "ok"`);
        const sha = typeof health.bundleSha256 === "string" ? health.bundleSha256 : undefined;
        if (options.expectSha256 && sha !== options.expectSha256) {
          throw new Error(`serves bundle ${sha ?? "(none reported)"}, expected ${options.expectSha256}`);
        }
        const versionId = typeof health.versionId === "string" ? health.versionId : undefined;
        if (options.versionOverride && versionId !== options.versionOverride.versionId) {
          throw new Error(
            `answered by version ${versionId ?? "(none reported)"}, expected ${options.versionOverride.versionId} ` +
              `(an override applies only to a version in the active deployment of Worker "${options.versionOverride.workerName}")`,
          );
        }
        return `${String(health.environment ?? "?")}, bundle ${sha ? sha.slice(0, 12) : "(not reported)"}${versionId ? `, version ${versionId}` : ""}`;
      } catch (error) {
        // A deployment reaches every location within seconds; until then the old version may answer.
        if (Date.now() + ROLLOUT_POLL_MS > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, ROLLOUT_POLL_MS));
      }
    }
  });

  const noToken = "no admin token (pass --admin-token or set ADMIN_TOKEN)";
  if (!options.adminToken) {
    for (const name of ["session create", "session read", "session delete", ...USER_SESSION_CHECKS, "flag put", "flag evaluate", "flag delete"]) skip(name, noToken);
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
    await userSessionChecks({ api, check, skip, cleanup });

    const flag = `smoke-${randomBytes(6).toString("hex")}`;
    const flagPath = `/api/features/${flag}`;
    let flagGone = false;
    try {
      const written = await check("flag put", async () => {
        const stored = await api.putFlag(flag, { enabled: true });
        if (stored.name !== flag || !("enabled" in stored) || stored.enabled !== true) throw new Error(`answered ${JSON.stringify(stored)}`);
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

const USER_SESSION_CHECKS = ["session refresh", "sign out all"];

/**
 * A refresh and a sign-out-everywhere, on a throw-away user of the smoke
 * test's own, so no real user is ever signed out. Whatever is not revoked is
 * deleted one by one afterwards.
 */
async function userSessionChecks({ api, check, skip, cleanup }: {
  api: ApiClient;
  check: (name: string, run: () => Promise<string>) => Promise<boolean>;
  skip: (name: string, reason: string) => void;
  cleanup: (what: string, path: string, remove: () => Promise<void>) => Promise<void>;
}) {
  const userId = `smoke-${randomBytes(6).toString("hex")}`;
  const ids: string[] = [];
  let revoked = false;
  try {
    await check("session refresh", async () => {
      for (let i = 0; i < 2; i++) {
        const created = await api.createSession({ ...SMOKE_USER, userId, ttlSeconds: 120 });
        if (typeof created.sessionId !== "string") throw new Error(`201 without a sessionId: ${JSON.stringify(created)}`);
        ids.push(created.sessionId);
      }
      const id = ids[0]!;
      // The session refreshes itself, as a client does: its id as the bearer token.
      const refreshed = await api.refreshSession(id, { sessionToken: id });
      if (refreshed.sessionId !== id || typeof refreshed.expiresAt !== "string" || Number.isNaN(Date.parse(refreshed.expiresAt))) {
        throw new Error(`answered ${JSON.stringify(refreshed)}, expected {sessionId, expiresAt}`);
      }
      return `expires ${refreshed.expiresAt}`;
    });
    if (ids.length === 0) return skip("sign out all", "no session was created");
    await check("sign out all", async () => {
      const listing = await api.listUserSessions(userId);
      if (ids.some((id) => JSON.stringify(listing).includes(id))) throw new Error("the session listing shows a full session id");
      if (!Array.isArray(listing.sessions) || listing.sessions.length !== ids.length) {
        throw new Error(`listed ${JSON.stringify(listing.sessions)}, expected ${ids.length} sessions`);
      }
      let count = 0;
      let cursor: string | undefined;
      for (;;) {
        const page = await api.revokeUserSessions(userId, cursor);
        count += Number(page.revoked);
        if (page.complete === true) break;
        if (typeof page.cursor !== "string") throw new Error(`answered complete: ${String(page.complete)} without a cursor`);
        cursor = page.cursor;
      }
      revoked = true;
      for (const id of ids) {
        if (await api.getSession(id)) throw new Error(`GET /sessions/${encodeURIComponent(id)} answered 200, expected 404`);
      }
      return `listed ${ids.length}, revoked ${count}; each now 404`;
    });
  } finally {
    if (!revoked) for (const id of ids) await cleanup(`session ${id}`, `/sessions/${encodeURIComponent(id)}`, () => api.deleteSession(id));
  }
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
        "version-id": { type: "string" },
        worker: { type: "string" },
        stack: { type: "string" },
      },
    }),
  );
  if (!values.url) {
    throw new CliError(
      "usage: npm run smoke -- --url <base> [--admin-token <token>] [--expect-sha256 <hash>] [--product <id>] [--version-id <id> [--worker <name> | --stack <name>]]",
    );
  }
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new CliError(`--url ${values.url} is not a URL`);
  }
  // .dev.vars is what `npm start` reads its token from; it says nothing about a remote deployment.
  const devVars = LOCAL_HOSTS.has(url.hostname) ? readDevVars() : {};
  const adminToken = firstSet(values["admin-token"], process.env.ADMIN_TOKEN, devVars.ADMIN_TOKEN);
  // The override header names the Worker: --worker, else the workerName of --stack (default dev).
  const versionOverride = values["version-id"]
    ? { versionId: values["version-id"], workerName: values.worker ?? loadStackConfig(values.stack ?? "dev").workerName }
    : undefined;
  console.log(
    `Smoke test of ${values.url}${versionOverride ? ` through ${VERSION_OVERRIDE_HEADER}: ${versionOverrideHeader(versionOverride)}` : ""}`,
  );
  const results = await runSmoke({
    url: values.url,
    adminToken,
    expectSha256: values["expect-sha256"],
    versionOverride,
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
