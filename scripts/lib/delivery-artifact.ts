/**
 * The build artifact the delivery commands ship: dist/worker.js as described
 * by dist/manifest.json. CI builds it once and hands the same files to every
 * stack, so these commands never rebuild; they check the bytes instead.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { BUNDLE_PATH, readManifest, type Manifest } from "../build";
import { CliError } from "./cli";

/**
 * The manifest of the bundle in dist/, after checking that dist/worker.js
 * still has the sha256 the manifest records. Undefined when there is no build.
 */
export async function readArtifact(): Promise<Manifest | undefined> {
  const manifest = await readManifest();
  if (!manifest) return undefined;
  const bytes = await readFile(BUNDLE_PATH).catch(() => {
    throw new CliError(`dist/manifest.json has no dist/worker.js beside it; run \`npm run build\` (or download the whole dist/ artifact)`);
  });
  const actual = createHash("sha256").update(bytes).digest("hex");
  if (actual !== manifest.sha256) {
    throw new CliError(
      `dist/worker.js (sha256 ${actual}) is not the bundle dist/manifest.json describes (sha256 ${manifest.sha256}); rebuild with \`npm run build\` or download the artifact again`,
    );
  }
  return manifest;
}

/** Like readArtifact, but a missing build is an error that says how to get one. */
export async function requireArtifact(): Promise<Manifest> {
  const manifest = await readArtifact();
  if (!manifest) throw new CliError("no build in dist/: run `npm run build` first (in CI, download the dist artifact of this commit)");
  return manifest;
}
