import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LOCAL_VERSION_METADATA } from "../src/contract";
import { appClient } from "./helpers";

describe("GET /health", () => {
  it("answers 200 with status, environment, build version and no bundle hash when none is configured", async () => {
    const res = await exports.default.fetch("http://worker.test/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ok",
      environment: "test",
      version: "test",
      bundleSha256: null,
      versionId: LOCAL_VERSION_METADATA.id,
      versionTag: LOCAL_VERSION_METADATA.tag,
    });
  });

  it("reports the deployed bundle's sha256 from BUNDLE_SHA256", async () => {
    const res = await appClient({}, { BUNDLE_SHA256: "ab".repeat(32), ENVIRONMENT: "prod" })("/health");
    expect(await res.json()).toMatchObject({ environment: "prod", bundleSha256: "ab".repeat(32) });
  });

  it("reports the running version's id and tag from the version_metadata binding", async () => {
    const metadata = { id: "5f1d6b0e-8c1a-4e2b-9d3c-7a6f5e4d3c2b", tag: "cd".repeat(32), timestamp: "2026-11-26T20:00:00.000Z" };
    const res = await appClient({}, { CF_VERSION_METADATA: metadata })("/health");
    expect(await res.json()).toMatchObject({ versionId: metadata.id, versionTag: metadata.tag });
  });
});

describe("GET /health/details", () => {
  const ADMIN_TOKENS = JSON.stringify([
    { name: "ci-purge", token: "ci-purge-secret-token", scopes: ["cache:purge"] },
    { name: "dashboard", token: "dashboard-secret-token", scopes: ["read"] },
  ]);

  it("shows a read-scoped token the named tokens' names and scopes, never a token", async () => {
    const res = await appClient({}, { ADMIN_TOKENS })("/health/details", { headers: { Authorization: "Bearer dashboard-secret-token" } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({
      status: "ok",
      adminTokens: [
        { name: "ci-purge", scopes: ["cache:purge"] },
        { name: "dashboard", scopes: ["read"] },
      ],
      adminTokenPrevious: false,
    });
    expect(text).not.toMatch(/secret-token|test-admin-token/);
  });

  it("refuses a token without read (403) and an anonymous caller (401)", async () => {
    const request = appClient({}, { ADMIN_TOKENS });
    expect((await request("/health/details", { headers: { Authorization: "Bearer ci-purge-secret-token" } })).status).toBe(403);
    expect((await request("/health/details")).status).toBe(401);
  });
});
