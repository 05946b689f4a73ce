import { env, exports } from "cloudflare:workers";
import { type AppOptions, createApp } from "../src/app";
import type { Env } from "../src/env";

export const ADMIN_TOKEN = "test-admin-token";
export const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };

/** A request through the deployed entry point (exports.default), as a client would make it. */
export const call = (path: string, init?: RequestInit) => exports.default.fetch(`http://worker.test${path}`, init);

/** A JSON request body with its Content-Type. */
export function jsonInit(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method, headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) };
}

/** A fresh app instance (own flag cache, own in-flight map) over the test bindings, optionally altered. */
export function appClient(options: AppOptions = {}, overrides: Partial<Env> = {}) {
  const app = createApp(options);
  const testEnv: Env = { ...env, ...overrides };
  return async (path: string, init?: RequestInit): Promise<Response> => app.fetch(new Request(`http://worker.test${path}`, init), testEnv);
}

/** Wraps a KV binding and records every operation made through it, e.g. "get flag:x". */
export function countingKv(kv: KVNamespace) {
  const calls: string[] = [];
  const wrapped = new Proxy(kv, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const [first] = args;
        calls.push(`${String(prop)} ${typeof first === "string" ? first : JSON.stringify(first)}`);
        return value.apply(target, args);
      };
    },
  });
  return { kv: wrapped, calls };
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
