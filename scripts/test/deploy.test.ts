import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, realpath, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../build";

/** A PATH holding only what `npm run` needs (node, npm, sh), so no pulumi is found whatever the machine has installed. */
let PATH_WITHOUT_PULUMI: string;
beforeAll(async () => {
  const which = (name: string) => {
    const found = (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, name)).find((path) => existsSync(path));
    if (!found) throw new Error(`${name} is not on PATH`);
    return realpath(found);
  };
  PATH_WITHOUT_PULUMI = await mkdtemp(join(tmpdir(), "no-pulumi-"));
  await symlink(process.execPath, join(PATH_WITHOUT_PULUMI, "node"));
  for (const tool of ["npm", "sh"]) await symlink(await which(tool), join(PATH_WITHOUT_PULUMI, tool));
});

async function run(script: string, args: string[]) {
  return promisify(execFile)(join(PATH_WITHOUT_PULUMI, "npm"), ["run", "--silent", script, "--", ...args], {
    cwd: ROOT,
    env: { ...process.env, PATH: PATH_WITHOUT_PULUMI },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

describe("delivery commands without a Pulumi CLI", () => {
  it.each([
    ["deploy", ["--stack", "dev"]],
    ["promote", ["--from", "dev", "--to", "prod"]],
    ["rollback", ["--stack", "prod"]],
    ["drift", ["--stack", "dev"]],
  ])("npm run %s exits 2 at once with the install pointer and no stack trace", async (script, args) => {
    const { code, stdout, stderr } = await run(script, args);
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(
      `${script}: the Pulumi CLI is not installed (no \`pulumi\` on PATH); install it from https://www.pulumi.com/docs/install/ and run this again`,
    );
    expect(stdout).toBe("");
  }, 30_000);

  it("npm run wrangler-config exits 2 and points to --outputs", async () => {
    const { code, stderr } = await run("wrangler-config", ["--stack", "dev"]);
    expect(code).toBe(2);
    expect(stderr.trim()).toMatch(/^wrangler-config: the Pulumi CLI is not installed; pass the outputs .* --outputs <file>/);
  }, 30_000);
});
