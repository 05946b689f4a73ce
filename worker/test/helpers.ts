import { env, exports } from "cloudflare:workers";
import { type MockInstance, vi } from "vitest";
import { type AppOptions, createApp } from "../src/app";
import type { Env } from "../src/env";

export const ADMIN_TOKEN = "test-admin-token";
export const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
export const BASE = "http://worker.test";

/** A request through the deployed entry point (exports.default), as a client would make it. */
export const call = (path: string, init?: RequestInit) => exports.default.fetch(`${BASE}${path}`, init);

/** A JSON request body with its Content-Type. */
export function jsonInit(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method, headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) };
}

/** A fresh app instance (own flag cache, own in-flight map) over the test bindings, optionally altered. */
export function appFetch(options: AppOptions = {}, overrides: Partial<Env> = {}) {
  const app = createApp(options);
  const testEnv: Env = { ...env, ...overrides };
  return async (request: Request): Promise<Response> => app.fetch(request, testEnv);
}

/** appFetch, taking a path under BASE and its RequestInit. */
export function appClient(options: AppOptions = {}, overrides: Partial<Env> = {}) {
  const fetchApp = appFetch(options, overrides);
  return (path: string, init?: RequestInit) => fetchApp(new Request(`${BASE}${path}`, init));
}

/** Wraps a KV binding and records every operation made through it, e.g. "get flag:x", and each one's options (second argument). */
export function countingKv(kv: KVNamespace) {
  const calls: string[] = [];
  const options: unknown[] = [];
  const wrapped = new Proxy(kv, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const [first] = args;
        calls.push(`${String(prop)} ${typeof first === "string" ? first : JSON.stringify(first)}`);
        options.push(args[1]);
        return value.apply(target, args);
      };
    },
  });
  return { kv: wrapped, calls, options };
}

export async function errorOf(res: Response): Promise<{ status: number; error: string; code: string }> {
  const body = (await res.json()) as { error: string; code: string };
  return { status: res.status, ...body };
}

/** The real binding with some operations replaced, to inject faults. */
export function withFaults(kv: KVNamespace, faults: Partial<Record<keyof KVNamespace, (...args: unknown[]) => unknown>>): KVNamespace {
  return new Proxy(kv, {
    get(target, prop, receiver) {
      const fault = faults[prop as keyof KVNamespace];
      if (fault) return fault;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The real binding, with `put` answering KV's rate-limit error (429) `times` times first; `attempts` records each put's key. */
export function rateLimitedPuts(kv: KVNamespace, times: number) {
  const attempts: string[] = [];
  const wrapped = withFaults(kv, {
    put: (...args: unknown[]) => {
      const [key] = args as Parameters<KVNamespace["put"]>;
      attempts.push(key);
      if (attempts.length <= times) return Promise.reject(new Error("KV PUT failed: 429 Too Many Requests"));
      return kv.put(...(args as Parameters<KVNamespace["put"]>));
    },
  });
  return { kv: wrapped, attempts };
}

export type OriginReply = Response | Error | "hang";

/**
 * Stubs the origin by spying on this isolate's fetch: each call takes the next
 * reply (the last one repeats), "hang" answers only when the caller aborts,
 * and the requested URLs are recorded. Requests must go through an app
 * created in the test (appFetch/appClient): exports.default's module has its own globals.
 */
export function stubOrigin(...replies: OriginReply[]): { urls: string[]; spy: MockInstance } {
  const urls: string[] = [];
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    urls.push(input instanceof Request ? input.url : String(input));
    const reply = replies[Math.min(urls.length, replies.length) - 1];
    if (reply === "hang") {
      return new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
    }
    if (reply instanceof Error || reply === undefined) throw reply ?? new Error("no reply");
    return reply.clone();
  });
  return { urls, spy };
}
