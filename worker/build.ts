/**
 * Bundles the Worker with esbuild into dist/worker.js and writes
 * dist/manifest.json (sha256 and sizes). The same sources always give the
 * same bytes, so redeploying unchanged code is a no-op for Pulumi.
 *
 * Runs in Node, not in the Worker: it lives here because both the Pulumi
 * program (infra/) and the commands (scripts/) need it, and infra/ must not
 * import scripts/. `npm run build` is scripts/build.ts.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DIST = join(ROOT, "dist");
export const BUNDLE_PATH = join(DIST, "worker.js");
export const MANIFEST_PATH = join(DIST, "manifest.json");
const ENTRY = join(ROOT, "worker/src/index.ts");
const SOURCES = join(ROOT, "worker/src");
/**
 * Set by the release commands for an update that only moves traffic (a
 * targeted update of the deployment): the version resource is not updated, so
 * the Pulumi program must not build either, and works without dist/.
 */
export const NO_BUILD_ENV = "KV_WORKER_STACK_NO_BUILD";
/** The budget for the minified bundle. */
export const BUNDLE_BUDGET_BYTES = 50 * 1024;

export interface Manifest {
  /** File name of the bundle inside dist/, used as the Worker's main module. */
  mainModule: string;
  sha256: string;
  bytes: number;
  gzipBytes: number;
  sourceMap: string;
  version: string;
}

export interface BuildOptions {
  /** Extra entry point bundled next to the production one (the bench's instrumented entry). */
  entry?: string;
  outfile?: string;
  log?: (line: string) => void;
}

export async function build(options: BuildOptions = {}): Promise<Manifest> {
  const log = options.log ?? (() => {});
  const outfile = options.outfile ?? BUNDLE_PATH;
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
  await mkdir(dirname(outfile), { recursive: true });
  const result = await esbuild.build({
    entryPoints: [options.entry ?? ENTRY],
    outfile,
    bundle: true,
    minify: true,
    format: "esm",
    // `neutral` resolves nanoid's Node build, which crashes in workerd.
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2023",
    sourcemap: "external",
    // Absolute paths in the source map would make the bytes depend on the checkout folder.
    sourceRoot: "",
    sourcesContent: true,
    legalComments: "none",
    define: { __BUILD_VERSION__: JSON.stringify(pkg.version) },
    logLevel: "warning",
    absWorkingDir: ROOT,
  });
  if (result.errors.length > 0) throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join("; ")}`);
  const bytes = await readFile(outfile);
  const manifest: Manifest = {
    mainModule: relative(dirname(outfile), outfile),
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bytes: bytes.byteLength,
    gzipBytes: gzipSync(bytes, { level: 9 }).byteLength,
    sourceMap: `${relative(dirname(outfile), outfile)}.map`,
    version: pkg.version,
  };
  if (outfile === BUNDLE_PATH) await writeFile(MANIFEST_PATH, `${JSON.stringify(manifest, null, 2)}\n`);
  log(
    `built ${relative(ROOT, outfile)}: ${formatKiB(manifest.bytes)} minified, ${formatKiB(manifest.gzipBytes)} gzip, sha256 ${manifest.sha256}`,
  );
  if (manifest.bytes > BUNDLE_BUDGET_BYTES) {
    log(`warning: bundle is over its ${formatKiB(BUNDLE_BUDGET_BYTES)} budget`);
  }
  return manifest;
}

/** Reads dist/manifest.json, or undefined when there is no build yet. */
export async function readManifest(): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(MANIFEST_PATH, "utf8")) as Manifest;
  } catch {
    return undefined;
  }
}

/** True when dist/ is missing or older than any Worker source or the lockfile. */
export async function isStale(): Promise<boolean> {
  const built = await stat(MANIFEST_PATH).catch(() => undefined);
  if (!built) return true;
  const inputs = [join(ROOT, "package-lock.json"), ...(await listFiles(SOURCES))];
  for (const file of inputs) {
    const s = await stat(file).catch(() => undefined);
    if (s && s.mtimeMs > built.mtimeMs) return true;
  }
  return false;
}

/** Builds only when dist/ is stale; returns the manifest either way. */
export async function ensureBuilt(log?: (line: string) => void): Promise<Manifest> {
  if (!(await isStale())) {
    const manifest = await readManifest();
    if (manifest) return manifest;
  }
  return build(log ? { log } : {});
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

export const formatKiB = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
