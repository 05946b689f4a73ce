import { once } from "node:events";
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { productKey } from "../../worker/src/contract";
import { type LocalStack, startLocalStack } from "../start";
import { runScript } from "./run-script";

const ADMIN_TOKEN = "purge-test-admin-token";
const SEEDED = 1234;

/** Runs `npm run purge` as a user would. */
const runPurge = (args: string[], env: Record<string, string> = {}) => runScript("purge.ts", args, env);

describe("npm run purge", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: ADMIN_TOKEN });
  });
  afterAll(() => stack.dispose());

  it("deletes every key under the prefix, page by page, and leaves the others", async () => {
    const cache = await stack.mf.getKVNamespace("CACHE");
    const keys = Array.from({ length: SEEDED }, (_, i) => productKey(`p-${i}`));
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((key) => cache.put(key, "{}")));
    }
    await cache.put("keep:1", "{}");

    const { code, stdout, stderr } = await runPurge(["--url", stack.url, "--prefix", "product:"], { ADMIN_TOKEN });

    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/page 1: deleted \d+/);
    expect(stdout).toMatch(new RegExp(`Purged ${SEEDED} keys in [2-9] pages`));
    expect((await cache.list({ prefix: "product:" })).keys).toEqual([]);
    expect(await cache.get("keep:1")).toBe("{}");
  }, 30_000);

  it("fails with the server's code and message when the token is wrong", async () => {
    const { code, stdout, stderr } = await runPurge(["--url", stack.url, "--prefix", "product:", "--admin-token", "wrong"]);
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(/^purge: .*answered 401 \(unauthorized: .+\)$/)]);
    expect(stdout).not.toContain("Purged");
  });

  it("fails in one line when the Worker cannot be reached", async () => {
    const closed = createServer().listen(0, "127.0.0.1");
    await once(closed, "listening");
    const { port } = closed.address() as { port: number };
    closed.close();
    const { code, stderr } = await runPurge(["--url", `http://127.0.0.1:${port}`, "--prefix", "product:", "--admin-token", "t"]);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`purge: cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
  });
});
