import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES } from "../src/app";
import { DOCUMENTED_MAX_BODY_BYTES, openApiDocument, OPERATIONS } from "../src/openapi";
import { call } from "./helpers";
import { appRoutes } from "./reliability/harness";

const fromOpenApi = (path: string) => path.replace(/\{(\w+)\}/g, ":$1");

describe("GET /openapi.json", () => {
  it("serves the OpenAPI 3.1 document built from these sources", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(openApiDocument("test"));
  });

  it("documents every route in the app's route table, and nothing else", async () => {
    const document = (await (await call("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${fromOpenApi(path)}`),
    );
    const registered = appRoutes().map((r) => `${r.method} ${r.path}`);
    expect(documented.sort()).toEqual(registered.sort());
    expect(OPERATIONS.map((op) => `${op.method.toUpperCase()} ${op.path}`).sort()).toEqual(registered.sort());
  });

  it("states the body limit the app enforces", () => {
    expect(DOCUMENTED_MAX_BODY_BYTES).toBe(MAX_BODY_BYTES);
  });
});
