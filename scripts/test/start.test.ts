import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readManifest, ROOT } from "../build";
import { readDevVars } from "../lib/cli";
import { cliOptions, type LocalStack, startLocalStack } from "../start";

const ADMIN_TOKEN = "start-test-admin-token";
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

describe("startLocalStack", () => {
  let dataDir: string;
  let stack: LocalStack;
  const start = () => startLocalStack({ port: 0, dataDir, adminToken: ADMIN_TOKEN });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "local-stack-"));
    stack = await start();
  });
  afterAll(async () => {
    await stack.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("serves /health from the built bundle, reporting its sha256", async () => {
    const response = await fetch(`${stack.url}/health`);
    expect(response.status).toBe(200);
    const manifest = await readManifest();
    expect(await response.json()).toMatchObject({ status: "ok", environment: "local", bundleSha256: manifest?.sha256 });
  });

  it("creates, reads and deletes a session in local KV", async () => {
    const created = await fetch(`${stack.url}/sessions`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ userId: "u-1", email: "ada@example.com" }),
    });
    expect(created.status).toBe(201);
    const { sessionId } = (await created.json()) as { sessionId: string };
    expect(await (await fetch(`${stack.url}/sessions/${sessionId}`)).json()).toMatchObject({ userId: "u-1" });

    const deleted = await fetch(`${stack.url}/sessions/${sessionId}`, { method: "DELETE", headers: admin });
    expect(deleted.status).toBe(204);
    expect((await fetch(`${stack.url}/sessions/${sessionId}`)).status).toBe(404);
  });

  it("stores a flag and evaluates it", async () => {
    const put = await fetch(`${stack.url}/api/features/start-test`, { method: "PUT", headers: admin, body: '{"enabled":true}' });
    expect(put.status).toBe(200);
    expect(await (await fetch(`${stack.url}/api/features/start-test`)).json()).toMatchObject({ enabled: true });
  });

  it("answers an unknown route with the JSON error envelope", async () => {
    const response = await fetch(`${stack.url}/no-such-route`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "not_found", error: expect.any(String) });
  });

  it("keeps KV data across a restart on the same data dir", async () => {
    const created = await fetch(`${stack.url}/sessions`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ userId: "u-persist", email: "grace@example.com" }),
    });
    const { sessionId } = (await created.json()) as { sessionId: string };
    await stack.dispose();
    stack = await start();
    const read = await fetch(`${stack.url}/sessions/${sessionId}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ userId: "u-persist" });
  });

  it("leaves no session id a client holds anywhere in the persisted KV (.data): sessions are hashed at rest", async () => {
    const held: string[] = [];
    for (const userId of ["u-at-rest", "u-at-rest", "u-other"]) {
      const created = await fetch(`${stack.url}/sessions`, { method: "POST", headers: admin, body: JSON.stringify({ userId, email: "at-rest@example.com" }) });
      expect(created.status).toBe(201);
      held.push(((await created.json()) as { sessionId: string }).sessionId);
    }
    const refreshed = await fetch(`${stack.url}/sessions/${held[0]}/refresh`, { method: "POST", headers: { authorization: `Bearer ${held[0]}` } });
    expect(refreshed.status).toBe(200);
    const listing = await fetch(`${stack.url}/users/u-at-rest/sessions`, { headers: admin });
    expect(((await listing.json()) as { sessions: unknown[] }).sessions).toHaveLength(2);
    expect((await fetch(`${stack.url}/sessions/${held[2]}`, { method: "DELETE", headers: { authorization: `Bearer ${held[2]}` } })).status).toBe(204);
    await stack.dispose();
    try {
      const files = await readdir(dataDir, { recursive: true, withFileTypes: true });
      const stored = await Promise.all(files.filter((f) => f.isFile()).map((f) => readFile(join(f.parentPath, f.name), "latin1")));
      expect(stored.join("").length).toBeGreaterThan(0);
      // Sanity: the data dir does hold what was written (the user's e-mail is in the session value).
      expect(stored.some((text) => text.includes("at-rest@example.com"))).toBe(true);
      for (const id of held) expect(stored.filter((text) => text.includes(id))).toEqual([]);
    } finally {
      stack = await start();
    }
  });

  it("refuses a busy port with a one-line reason", async () => {
    const busy = createServer().listen(0, "127.0.0.1");
    await once(busy, "listening");
    const { port } = busy.address() as { port: number };
    try {
      await expect(startLocalStack({ port, ephemeral: true, adminToken: ADMIN_TOKEN })).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      busy.close();
    }
  });
});

describe("startLocalStack with --stack", () => {
  it("runs with the stack's vars and its flags declared as code, read-only through the API", async () => {
    const prod = await startLocalStack({ stack: "prod", port: 0, ephemeral: true, adminToken: ADMIN_TOKEN });
    try {
      expect(await (await fetch(`${prod.url}/health`)).json()).toMatchObject({ environment: "prod" });
      // Pulumi.prod.yaml declares dark-mode disabled and new-checkout at 10 %.
      expect(await (await fetch(`${prod.url}/api/features/dark-mode`)).json()).toMatchObject({ enabled: false, reason: "DISABLED" });
      const listed = await (await fetch(`${prod.url}/api/features`, { headers: admin })).json();
      expect(JSON.stringify(listed)).toContain('"percentage":10');
      const put = await fetch(`${prod.url}/api/features/dark-mode`, { method: "PUT", headers: admin, body: '{"enabled":true}' });
      expect(put.status).toBe(409);
      expect(await put.json()).toMatchObject({ code: "managed_by_config" });
    } finally {
      await prod.dispose();
    }
  });

  it("refuses a stack that has no stack file", async () => {
    await expect(startLocalStack({ stack: "nope", port: 0, ephemeral: true })).rejects.toThrow("no stack file Pulumi.nope.yaml");
  });
});

describe("npm start settings", () => {
  it("takes flags over the environment, the environment over .dev.vars, .dev.vars over defaults", () => {
    const devVars = { PORT: "3000", HOST: "0.0.0.0", ADMIN_TOKEN: "from-file", ORIGIN_URL: "https://file.test" };
    expect(cliOptions(["--port", "5000"], { PORT: "4000", HOST: "localhost", ADMIN_TOKEN: "from-env" }, devVars)).toMatchObject({
      port: 5000,
      host: "localhost",
      adminToken: "from-env",
      originUrl: "https://file.test",
    });
    expect(cliOptions([], {}, {})).toMatchObject({ port: 8787, host: "127.0.0.1", adminToken: undefined, originUrl: undefined });
  });

  it("takes the previous admin token (a rotation) from the environment or .dev.vars, and ignores an empty one", () => {
    expect(cliOptions([], {}, { ADMIN_TOKEN_PREVIOUS: "old" }).adminTokenPrevious).toBe("old");
    expect(cliOptions([], { ADMIN_TOKEN_PREVIOUS: "older" }, { ADMIN_TOKEN_PREVIOUS: "old" }).adminTokenPrevious).toBe("older");
    expect(cliOptions([], { ADMIN_TOKEN_PREVIOUS: "" }, {}).adminTokenPrevious).toBeUndefined();
  });

  it("rejects an unknown flag and a port that is not a port", () => {
    expect(() => cliOptions(["--prot", "1"], {}, {})).toThrow(/--prot/);
    expect(() => cliOptions([], { PORT: "80a" }, {})).toThrow('invalid port "80a"');
  });

  it("reads .dev.vars with comments and quotes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dev-vars-"));
    const file = join(dir, ".dev.vars");
    await writeFile(file, '# local secrets\nADMIN_TOKEN="s3cret # not a comment"\nORIGIN_URL=\'https://origin.test\' # a comment\n');
    expect(readDevVars(file)).toEqual({ ADMIN_TOKEN: "s3cret # not a comment", ORIGIN_URL: "https://origin.test" });
    expect(readDevVars(join(dir, "missing"))).toEqual({});
    await rm(dir, { recursive: true });
  });
});

describe("npm start (the CLI)", () => {
  it("prints the ready line, serves, and on SIGINT disposes workerd and exits 0", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "local-stack-cli-"));
    // Its own process group, so that anything it leaves behind can be found.
    const child = spawn(join(ROOT, "node_modules/.bin/tsx"), ["scripts/start.ts", "--port", "0", "--data-dir", dataDir], {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, ADMIN_TOKEN, PORT: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", () => {
          const ready = /ready at (http:\/\/\S+)/.exec(output);
          if (ready?.[1]) resolve(ready[1]);
        });
        void exited.then(() => reject(new Error(`exited before ready:\n${output}`)));
      });
      expect((await fetch(`${url}/health`)).status).toBe(200);
      expect(processGroup(child.pid!)).toMatch(/workerd/);

      child.kill("SIGINT");
      const [code] = await exited;
      expect(code, output).toBe(0);
      expect(output).toContain("Stopped.");
      expect(processGroup(child.pid!)).toBe("");
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // ESRCH: nothing left in the group
      }
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});

/** The processes still running in a process group (zombies have exited; they only await reaping). */
function processGroup(pgid: number): string {
  return execFileSync("ps", ["-e", "-o", "pgid=,stat=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([group, stat]) => group === String(pgid) && !stat?.startsWith("Z"))
    .map((fields) => fields.slice(2).join(" "))
    .join("\n");
}
