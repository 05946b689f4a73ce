/**
 * The OpenAPI document as the build ships it: generated from the Worker's
 * schemas (./src/openapi.ts), checked by an independent validator, and
 * embedded in the bundle compressed. Node-only, beside the Worker's sources
 * rather than in scripts/, so that whatever builds the bundle can import it.
 *
 * Embedding it raw would add ~17.5 KB to the minified bundle, and shipping the
 * generator (the JSON Schema converter plus the schemas) ~25 KB; deflated and
 * base64-encoded it adds ~4.5 KB, and the gzip size grows by the same ~3.5 KB
 * either way, since the document compresses the same whether or not it was
 * compressed first. The Worker inflates it when GET /openapi.json is called.
 */
import { deflateRawSync } from "node:zlib";
import { openApiDocument } from "./src/openapi.ts";

/** The esbuild `define` name the Worker's /openapi.json route reads (worker/src/routes/openapi.ts). */
export const OPENAPI_DEFINE = "__OPENAPI_DEFLATED__";

export interface BuiltDocument {
  document: Record<string, unknown>;
  /** dist/openapi.json's content. */
  text: string;
  /** The esbuild `define` entry that embeds the document. */
  define: Record<string, string>;
}

export function buildOpenApi(version: string): BuiltDocument {
  const document = openApiDocument(version);
  const compact = JSON.stringify(document);
  const deflated = deflateRawSync(compact, { level: 9 }).toString("base64");
  return { document, text: `${JSON.stringify(document, null, 2)}\n`, define: { [OPENAPI_DEFINE]: JSON.stringify(deflated) } };
}

/** Throws with every problem listed when the document is not valid OpenAPI 3.1. */
export async function assertValidOpenApi(document: Record<string, unknown>): Promise<void> {
  const { validate } = await import("@readme/openapi-parser");
  // The parser resolves $refs in place; the caller's document stays as written.
  const result = await validate(structuredClone(document) as Parameters<typeof validate>[0]);
  if (!result.valid) {
    throw new Error(`the OpenAPI document is invalid: ${result.errors.map((e) => e.message).join("; ")}`);
  }
}
