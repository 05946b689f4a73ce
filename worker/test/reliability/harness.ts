/** What the reliability tests share besides ../helpers: the error envelope, KV snapshots, the app's routes. */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createApp } from "../../src/app";
import { type AdminScope, KV_BINDINGS } from "../../src/contract";

/** Asserts the JSON error envelope `{error, code}` and returns it. */
export async function expectEnvelope(res: Response, status?: number, code?: string) {
  if (status !== undefined) expect(res.status).toBe(status);
  expect(res.headers.get("Content-Type") ?? "").toMatch(/^application\/json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(["code", "error"]);
  expect(typeof body.error).toBe("string");
  expect(body.error).not.toBe("");
  expect(typeof body.code).toBe("string");
  if (code !== undefined) expect(body.code).toBe(code);
  return body as { error: string; code: string };
}

/** Asserts OFREP's error shape `{key?, errorCode, errorDetails}` (the /ofrep/ routes' errors) and returns it. */
export async function expectOfrepError(res: Response, status?: number, errorCode?: string) {
  if (status !== undefined) expect(res.status).toBe(status);
  expect(res.headers.get("Content-Type") ?? "").toMatch(/^application\/json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body).filter((k) => k !== "key").sort()).toEqual(["errorCode", "errorDetails"]);
  expect(typeof body.errorCode).toBe("string");
  expect(typeof body.errorDetails).toBe("string");
  if (errorCode !== undefined) expect(body.errorCode).toBe(errorCode);
  return body as { key?: string; errorCode: string; errorDetails: string };
}

/** The error shape a path's clients read: OFREP's under /ofrep/, the envelope everywhere else. */
export const expectError = (path: string, res: Response) => (path.startsWith("/ofrep/") ? expectOfrepError(res) : expectEnvelope(res));

/** Every key (with its value) in the three namespaces: compared before and after a rejected request. */
export async function kvSnapshot(): Promise<Record<string, string | null>> {
  const snapshot: Record<string, string | null> = {};
  for (const binding of KV_BINDINGS) {
    let cursor: string | undefined;
    do {
      const page = await env[binding].list(cursor ? { cursor } : {});
      for (const key of page.keys) snapshot[`${binding} ${key.name}`] = await env[binding].get(key.name);
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
  }
  return snapshot;
}

export interface AppRoute {
  method: string;
  path: string;
}

/**
 * The endpoints the app registers, from Hono's own route table: middleware
 * (method ALL, wildcard paths) left out, one entry per method and path.
 */
export function appRoutes(): AppRoute[] {
  const seen = new Map<string, AppRoute>();
  for (const { method, path } of createApp().routes) {
    if (method === "ALL" || path.includes("*")) continue;
    seen.set(`${method} ${path}`, { method, path });
  }
  return [...seen.values()];
}

/**
 * The admin scope each route declares, from the app's route table: the
 * scoped middleware on a route (requireScope, requireSelfOrScope) carries it.
 */
export function routeScopes(): (AppRoute & { scope: AdminScope })[] {
  const scoped = new Map<string, AppRoute & { scope: AdminScope }>();
  for (const { method, path, handler } of createApp().routes) {
    const scope = (handler as { scope?: AdminScope }).scope;
    if (scope !== undefined) scoped.set(`${method} ${path}`, { method, path, scope });
  }
  return [...scoped.values()];
}
