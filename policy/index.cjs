// The entry Pulumi's policy runner loads (`require` of this folder). That
// runner always registers its vendored ts-node, which cannot load this
// project's TypeScript ESM (extensionless imports, TypeScript 6), and it does
// not honour PulumiPolicy.yaml runtime options (pulumi/pulumi#4830). So the
// entry is plain CommonJS that loads the pack through tsx, the loader the
// program (Pulumi.yaml nodeargs) and every script use.
require("tsx/cjs/api").register();
require("./pack.ts");
