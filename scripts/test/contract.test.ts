/**
 * The OpenAPI document against the running Worker: every answer recorded
 * here, over real HTTP to the local stack, must match the document's schema
 * and headers for its operation and status, and every status the document
 * promises must be seen at least once (except those only a KV fault causes).
 * So neither the document nor the code can drift from the other.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { dereference, validate } from "@readme/openapi-parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENT_OPERATIONS, createApiClient } from "kv-worker-stack/client";
import { OPENAPI_PATH } from "../build";
import { startLocalStack, type LocalStack } from "../start";

interface Recorded {
  method: string;
  path: string;
  status: number;
  headers: Headers;
  body: string;
}
type ResponseObject = { headers?: Record<string, unknown>; content?: { "application/json": { schema: object } } };
type OperationObject = { operationId: string; responses: Record<string, ResponseObject> };
type Document = { paths: Record<string, Record<string, OperationObject>> };

/** Statuses only a KV fault produces; worker/test/reliability/faults.test.ts checks those answers' shapes. */
const FAULT_ONLY = new Set(["503"]);

const recorded: Recorded[] = [];
/** fetch, keeping a copy of every answer. */
const recordingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
  recorded.push({ method, path: url.pathname, status: response.status, headers: response.headers, body: await response.clone().text() });
  return response;
};

/** Named tokens (ADMIN_TOKENS) for the 403 answers: one holding only `read`, one only `cache:purge`. */
const READ_ONLY = "contract-read-only-token";
const PURGE_ONLY = "contract-purge-only-token";
const NAMED_TOKENS = JSON.stringify([
  { name: "read-only", token: READ_ONLY, scopes: ["read"] },
  { name: "purge-only", token: PURGE_ONLY, scopes: ["cache:purge"] },
]);

/** Low enough that the 429s below are quick to reach, high enough that the rest of the exercise (one client) never is. */
const LIMIT = 30;
const CONTRACT_LIMITS = {
  namespaceBase: 1000,
  limits: { productMisses: { limit: LIMIT, period: 60 }, refreshesPerClient: { limit: LIMIT, period: 60 }, refreshesPerSession: { limit: LIMIT, period: 60 }, flagEvaluations: { limit: LIMIT, period: 60 } },
} as const;

let stack: LocalStack;
let origin: Server;
let raw: (path: string, init?: RequestInit) => Promise<Response>;

beforeAll(async () => {
  // An origin that knows product p1, has no p404, and fails for anything else.
  origin = createServer((request, response) => {
    const status = request.url === "/products/p1" ? 200 : request.url === "/products/p404" ? 404 : 500;
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(status === 200 ? { id: "p1", name: "Product one" } : { error: "x" }));
  });
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "contract-test", adminTokens: NAMED_TOKENS, originUrl, rateLimits: CONTRACT_LIMITS });
  raw = (path, init) => recordingFetch(`${stack.url}${path}`, init);
}, 60_000);
afterAll(async () => {
  await stack?.dispose();
  origin?.close();
});

/** Every operation through the typed client, then the refusals each one documents. */
async function exercise() {
  const api = createApiClient({ baseUrl: stack.url, adminToken: stack.adminToken, fetch: recordingFetch });
  const admin = { authorization: `Bearer ${stack.adminToken}` };
  const json = (method: string, body: string, headers: Record<string, string> = {}) => ({ method, headers: { "content-type": "application/json", ...headers }, body });
  const big = JSON.stringify({ enabled: true, metadata: { note: "x".repeat(17 * 1024) } });

  await api.health();
  await raw("/openapi.json");
  await raw("/health/details", { headers: admin });
  await raw("/health/details"); // 401
  await raw("/health/details", { headers: { authorization: `Bearer ${PURGE_ONLY}` } }); // 403

  // 403 insufficient_scope: a named token without the route's scope.
  const readOnly = { authorization: `Bearer ${READ_ONLY}` };
  await raw("/sessions", json("POST", '{"userId":"u1","email":"u1@example.com"}', readOnly));
  await raw(`/sessions/${"s".repeat(32)}`, { method: "DELETE", headers: readOnly });
  await raw(`/sessions/${"s".repeat(32)}/refresh`, { method: "POST", headers: readOnly });
  await raw("/users/u2/sessions", { headers: readOnly });
  await raw("/users/u2/sessions", { method: "DELETE", headers: readOnly });
  await raw("/api/products/p1/cache", { method: "DELETE", headers: readOnly });
  await raw("/api/cache?prefix=product:", { method: "DELETE", headers: readOnly });
  await raw("/api/features", { headers: { authorization: `Bearer ${PURGE_ONLY}` } });
  await raw("/api/features", json("POST", '{"flags":{}}', readOnly));
  await raw("/api/backups", { headers: readOnly });
  await raw("/api/backups", { method: "POST", headers: readOnly });
  await raw("/api/backups/continue", { method: "POST", headers: readOnly });
  await raw("/api/backups/latest", { headers: readOnly });
  await raw("/api/backups/latest/restore", json("POST", '{"namespace":"CONFIG"}', readOnly));
  await raw("/api/features/contract-flag", json("PUT", '{"enabled":true}', readOnly));
  await raw("/api/features/contract-flag", { method: "DELETE", headers: readOnly });

  const { sessionId } = await api.createSession({ userId: "u1", email: "u1@example.com", roles: ["editor"], ttlSeconds: 3600 });
  await api.getSession(sessionId);
  await api.deleteSession(sessionId, { sessionToken: sessionId });
  await api.getSession(sessionId); // 404
  await raw("/sessions", json("POST", '{"userId":"u1"}', admin)); // 400
  await raw("/sessions", json("POST", '{"userId":"u1","email":"u1@example.com"}')); // 401
  await raw("/sessions", json("POST", big, admin)); // 413
  await raw(`/sessions/${"s".repeat(32)}`, { method: "DELETE" }); // 401
  await raw("/sessions/not-a-session-id", { method: "DELETE", headers: admin }); // 404

  const { sessionId: own } = await api.createSession({ userId: "u2", email: "u2@example.com", ttlSeconds: 3600 });
  await api.refreshSession(own, { sessionToken: own });
  await raw(`/sessions/${own}/refresh`, { method: "POST" }); // 401
  await raw(`/sessions/${"s".repeat(32)}/refresh`, { method: "POST", headers: admin }); // 404
  const tooLong = `/users/${"u".repeat(257)}/sessions`;
  await api.listUserSessions("u2");
  await raw(tooLong, { headers: admin }); // 400
  await raw("/users/u2/sessions"); // 401
  await api.revokeUserSessions("u2");
  await raw(tooLong, { method: "DELETE", headers: admin }); // 400
  await raw("/users/u2/sessions", { method: "DELETE" }); // 401

  await api.getProduct("p1");
  await api.getProduct("p1"); // HIT
  await raw("/api/products/p404"); // 404
  await raw("/api/products/p500"); // 502
  await raw("/api/products/a*b"); // 400
  await api.invalidateProduct("p1");
  await raw("/api/products/p1/cache", { method: "DELETE" }); // 401
  await raw("/api/products/a*b/cache", { method: "DELETE", headers: admin }); // 400
  await api.purgeCache("product:");
  await raw("/api/cache", { method: "DELETE", headers: admin }); // 400
  await raw("/api/cache?prefix=product:", { method: "DELETE" }); // 401

  await api.putFlag("contract-flag", { enabled: true, percentage: 50, allowedUsers: ["alice"], metadata: { owner: "qa", level: { deep: 1 } } });
  await api.evaluateFlag("contract-flag", "alice");
  await api.listFlags();
  await raw("/api/features", {}); // 401
  await raw("/api/features?format=flagd", { headers: admin });
  await raw("/api/features?format=yaml", { headers: admin }); // 400
  await raw("/api/features/-bad?userId=u"); // 400
  await raw("/api/features/contract-flag", json("PUT", '{"enabled":"yes"}', admin)); // 400
  await raw("/api/features/contract-flag", json("PUT", '{"enabled":true}')); // 401
  await raw("/api/features/contract-flag", json("PUT", big, admin)); // 413
  await raw("/api/features/new-checkout", json("PUT", '{"enabled":true}', admin)); // 409 (the dev stack declares it)
  await raw("/api/features/new-checkout", { method: "DELETE", headers: admin }); // 409
  await raw("/api/features/-bad", { method: "DELETE", headers: admin }); // 400
  await raw("/api/features/contract-flag", { method: "DELETE" }); // 401

  const typed = { state: "ENABLED" as const, variants: { a: "x", b: "y" }, defaultVariant: "a", targeting: { if: [{ $ref: "contract-rule" }, "b", null] }, metadata: { owner: "qa" } };
  await api.importFlags({ flags: { "contract-typed": typed, "contract-broken": { state: "ENABLED" as const, variants: { a: 1 }, defaultVariant: "a", targeting: { if: [true, "zzz", "a"] } } }, $evaluators: { "contract-rule": { "==": [{ var: "tier" }, "gold"] } } });
  await api.evaluateFlag("contract-typed", "alice");
  await raw("/api/features", json("POST", JSON.stringify({ flags: { "contract-typed": { ...typed, defaultVariant: "z" } } }), admin)); // 400
  await raw("/api/features", json("POST", JSON.stringify({ flags: {} }))); // 401
  await raw("/api/features", json("POST", JSON.stringify({ flags: { "new-checkout": { enabled: false } } }), admin)); // 409
  await raw("/api/features", json("POST", JSON.stringify({ flags: { big: JSON.parse(big) } }), admin)); // 413
  await raw("/ofrep/v1/evaluate/flags/contract-typed", json("POST", JSON.stringify({ context: { targetingKey: "alice", tier: "gold" } })));
  await raw("/ofrep/v1/evaluate/flags/contract-broken", json("POST", "{}")); // 500 GENERAL

  const context = JSON.stringify({ context: { targetingKey: "alice" } });
  await raw("/ofrep/v1/evaluate/flags/contract-flag", json("POST", context));
  await raw("/ofrep/v1/evaluate/flags/missing-flag", json("POST", context)); // 404
  await raw("/ofrep/v1/evaluate/flags/contract-flag", json("POST", '{"context":{"targetingKey":1}}')); // 400
  await raw("/ofrep/v1/evaluate/flags/contract-flag", json("POST", big)); // 413
  const bulk = await raw("/ofrep/v1/evaluate/flags", json("POST", context));
  await raw("/ofrep/v1/evaluate/flags", json("POST", context, { "if-none-match": bulk.headers.get("etag")! })); // 304
  await raw("/ofrep/v1/evaluate/flags", json("POST", "[]")); // 400
  await raw("/ofrep/v1/evaluate/flags", json("POST", big)); // 413
  await api.deleteFlag("contract-flag");

  // 429 rate_limited: from a client of its own (CF-Connecting-IP) per route, twice the limit and one more,
  // so the limit is passed even if the limiter's fixed window turns over during the burst.
  const client = (n: number) => ({ "cf-connecting-ip": `192.0.2.${n}` });
  const { sessionId: limitedSession } = await api.createSession({ userId: "u3", email: "u3@example.com", ttlSeconds: 3600 });
  const overLimit: ((i: number) => Promise<Response>)[] = [
    (i) => raw(`/api/products/limited-${i}`, { headers: client(1) }),
    () => raw(`/sessions/${limitedSession}/refresh`, { method: "POST", headers: { ...client(2), authorization: `Bearer ${limitedSession}` } }),
    () => raw("/api/features/contract-flag?userId=u", { headers: client(3) }),
    () => raw("/ofrep/v1/evaluate/flags/contract-flag", json("POST", context, client(4))),
    () => raw("/ofrep/v1/evaluate/flags", json("POST", context, client(5))),
  ];
  for (const send of overLimit) for (let i = 0; i <= 2 * LIMIT; i++) await (await send(i)).arrayBuffer();
  // Backups: the local stack's bucket, under its ENVIRONMENT (local).
  const bucket = await stack.mf.getR2Bucket("BACKUPS");
  const { backupId } = await api.startBackup();
  await api.continueBackup(); // idle
  await api.listBackups();
  await api.getBackup("latest");
  await api.restoreBackup(backupId!, { namespace: "CONFIG" });
  await raw("/api/backups", {}); // 401
  await raw("/api/backups", { method: "POST" }); // 401
  await raw("/api/backups/continue", { method: "POST" }); // 401
  await raw("/api/backups/latest"); // 401
  await raw("/api/backups/yesterday", { headers: admin }); // 400
  await raw("/api/backups/2020-01-01T00-00-00Z-abcd", { headers: admin }); // 404
  await raw(`/api/backups/${backupId}/restore`, json("POST", '{"namespace":"CACHE"}', admin)); // 400
  await raw(`/api/backups/${backupId}/restore`, json("POST", '{"namespace":"CONFIG"}')); // 401
  await raw("/api/backups/2020-01-01T00-00-00Z-abcd/restore", json("POST", '{"namespace":"CONFIG"}', admin)); // 404
  await raw(`/api/backups/${backupId}/restore`, json("POST", big, admin)); // 413
  await bucket.put(`local/CONFIG/${backupId}/part-0001.ndjson`, "{}\n");
  await raw(`/api/backups/${backupId}/restore`, json("POST", '{"namespace":"CONFIG"}', admin)); // 502
  await bucket.put("local/_state.json", JSON.stringify({ backupId: "2020-01-01T00-00-00Z-abcd" }));
  await raw("/api/backups", { method: "POST", headers: admin }); // 409
  await bucket.delete("local/_state.json");
}

/** The document operation a recorded request went to. */
function operationFor(document: Document, { method, path }: Recorded): OperationObject | undefined {
  for (const [pattern, methods] of Object.entries(document.paths)) {
    const regex = new RegExp(`^${pattern.replace(/\{\w+\}/g, "[^/]+")}$`);
    if (regex.test(path) && methods[method.toLowerCase()]) return methods[method.toLowerCase()];
  }
  return undefined;
}

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1 to an independent validator", async () => {
    const document = JSON.parse(await readFile(OPENAPI_PATH, "utf8")) as { openapi: string };
    expect(document.openapi).toBe("3.1.0");
    const result = await validate(document as Parameters<typeof validate>[0]);
    expect(result.valid ? [] : result.errors).toEqual([]);
  });

  it("has each of the typed client's operations at the client's method and path, with its success status", async () => {
    const document = JSON.parse(await readFile(OPENAPI_PATH, "utf8")) as Document;
    for (const [operationId, [method, path, success]] of Object.entries(CLIENT_OPERATIONS)) {
      const operation = document.paths[path.replace(/:(\w+)/g, "{$1}")]?.[method.toLowerCase()];
      expect(operation?.operationId, `${method} ${path}`).toBe(operationId);
      expect(Object.keys(operation!.responses).filter((status) => status < "300")).toEqual([String(success)]);
    }
  });

  it("matches every answer the Worker gives, and every status it documents is given", async () => {
    await exercise();
    const document = (await dereference(JSON.parse(await readFile(OPENAPI_PATH, "utf8")))) as unknown as Document;
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const answer of recorded) {
      const where = `${answer.method} ${answer.path} → ${answer.status}`;
      const operation = operationFor(document, answer);
      const documented = operation?.responses[String(answer.status)];
      if (!operation || !documented) {
        problems.push(`${where}: not in the document`);
        continue;
      }
      seen.add(`${operation.operationId} ${answer.status}`);
      for (const header of Object.keys(documented.headers ?? {})) {
        if (!answer.headers.has(header)) problems.push(`${where}: no ${header} header`);
      }
      const schema = documented.content?.["application/json"].schema;
      if (!schema) {
        if (answer.body !== "") problems.push(`${where}: a body the document does not describe`);
        continue;
      }
      if (!/^application\/json/.test(answer.headers.get("content-type") ?? "")) problems.push(`${where}: not JSON`);
      const check = ajv.compile(schema);
      if (!check(JSON.parse(answer.body))) problems.push(`${where}: ${ajv.errorsText(check.errors)} in ${answer.body.slice(0, 200)}`);
    }
    expect(problems).toEqual([]);
    const promised = Object.values(document.paths).flatMap((methods) =>
      Object.values(methods).flatMap((op) => Object.keys(op.responses).filter((s) => !FAULT_ONLY.has(s)).map((s) => `${op.operationId} ${s}`)),
    );
    expect(promised.filter((p) => !seen.has(p))).toEqual([]);
  }, 60_000);
});
