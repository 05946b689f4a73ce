import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appClient } from "./helpers";

describe("GET /health", () => {
  it("answers 200 with status, environment, build version and no bundle hash when none is configured", async () => {
    const res = await exports.default.fetch("http://worker.test/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", environment: "test", version: "test", bundleSha256: null });
  });

  it("reports the deployed bundle's sha256 from BUNDLE_SHA256", async () => {
    const res = await appClient({}, { BUNDLE_SHA256: "ab".repeat(32), ENVIRONMENT: "prod" })("/health");
    expect(await res.json()).toMatchObject({ environment: "prod", bundleSha256: "ab".repeat(32) });
  });
});
