/**
 * OpenFeature's own SDKs and community OFREP providers, unchanged, against
 * the local stack over real HTTP: what an application gets must be what
 * GET /api/features/:name answers.
 */
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
import { OpenFeature as ServerOpenFeature } from "@openfeature/server-sdk";
import { OpenFeature as WebOpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalStack, type LocalStack } from "../start";

const FLAGS = {
  "of-static": { enabled: true, metadata: { owner: "growth", weight: 2, nested: { dropped: true } } },
  "of-off": { enabled: false, allowedUsers: ["alice"] },
  "of-allow": { enabled: true, percentage: 0, allowedUsers: ["alice"] },
  "of-split": { enabled: true, percentage: 50 },
};
const USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];

let stack: LocalStack;
const admin = () => ({ authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" });
const putFlag = (name: string, flag: unknown) => fetch(`${stack.url}/api/features/${name}`, { method: "PUT", headers: admin(), body: JSON.stringify(flag) });
const evaluate = async (name: string, userId: string) =>
  (await (await fetch(`${stack.url}/api/features/${name}?userId=${userId}`)).json()) as { enabled: boolean; reason: string };

beforeAll(async () => {
  stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "openfeature-test" });
  for (const [name, flag] of Object.entries(FLAGS)) expect((await putFlag(name, flag)).status).toBe(200);
}, 60_000);
afterAll(async () => {
  await Promise.all([ServerOpenFeature.close(), WebOpenFeature.close()]);
  await stack?.dispose();
});

describe("@openfeature/server-sdk with @openfeature/ofrep-provider", () => {
  beforeAll(() => ServerOpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: stack.url })));

  it("evaluates every flag for every user as GET /api/features/:name does", async () => {
    const client = ServerOpenFeature.getClient();
    const outcomes = new Set<string>();
    for (const name of Object.keys(FLAGS)) {
      for (const targetingKey of USERS) {
        const expected = await evaluate(name, targetingKey);
        // The default is the opposite of the answer, so a fallback could not pass for one.
        const details = await client.getBooleanDetails(name, !expected.enabled, { targetingKey, plan: "pro" });
        expect(details).toMatchObject({ value: expected.enabled, reason: expected.reason, variant: expected.enabled ? "on" : "off" });
        expect(details.errorCode).toBeUndefined();
        outcomes.add(`${details.reason} ${details.value}`);
      }
    }
    expect([...outcomes].sort()).toEqual(["DISABLED false", "SPLIT false", "SPLIT true", "STATIC true", "TARGETING_MATCH true"]);
  });

  it("carries the flag's primitive metadata", async () => {
    const details = await ServerOpenFeature.getClient().getBooleanDetails("of-static", false, { targetingKey: "bob" });
    expect(details.flagMetadata).toEqual({ owner: "growth", weight: 2 });
  });

  it("gives the caller's default for a missing flag", async () => {
    const client = ServerOpenFeature.getClient();
    for (const fallback of [true, false]) {
      const details = await client.getBooleanDetails("of-missing", fallback, { targetingKey: "bob" });
      expect(details).toMatchObject({ value: fallback, reason: "ERROR", errorCode: "FLAG_NOT_FOUND" });
    }
  });
});

describe("@openfeature/web-sdk with @openfeature/ofrep-web-provider (bulk, ETag polling)", () => {
  const statuses: number[] = [];
  beforeAll(async () => {
    await WebOpenFeature.setContext({ targetingKey: "alice" });
    const provider = new OFREPWebProvider({
      baseUrl: stack.url,
      pollInterval: 100,
      // Node has no localStorage; a browser would keep the last answer there.
      cacheMode: "disabled",
      fetchImplementation: async (input: RequestInfo | URL, init?: RequestInit) => {
        const response = await fetch(input, init);
        statuses.push(response.status);
        return response;
      },
    });
    await WebOpenFeature.setProviderAndWait(provider);
  });

  it("evaluates every flag for the static context as GET /api/features/:name does", async () => {
    const client = WebOpenFeature.getClient();
    for (const name of Object.keys(FLAGS)) {
      const expected = await evaluate(name, "alice");
      expect(client.getBooleanDetails(name, !expected.enabled)).toMatchObject({ value: expected.enabled, reason: expected.reason });
    }
  });

  it("gives the caller's default for a missing flag", () => {
    const client = WebOpenFeature.getClient();
    expect(client.getBooleanValue("of-missing", true)).toBe(true);
    expect(client.getBooleanValue("of-missing", false)).toBe(false);
  });

  it("polls with If-None-Match (304 while nothing changed) and sees a changed flag after the next poll", async () => {
    const client = WebOpenFeature.getClient();
    await expect.poll(() => statuses.filter((s) => s === 304).length, { timeout: 5_000 }).toBeGreaterThan(0);
    expect(client.getBooleanValue("of-static", false)).toBe(true);
    const changed = new Promise<void>((resolve) => client.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()));
    expect((await putFlag("of-static", { enabled: false })).status).toBe(200);
    await changed;
    expect(client.getBooleanDetails("of-static", true)).toMatchObject({ value: false, reason: "DISABLED" });
    expect(statuses.every((s) => s === 200 || s === 304)).toBe(true);
  });
});
