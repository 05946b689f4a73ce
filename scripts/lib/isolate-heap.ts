/**
 * The live JavaScript heap of one Worker's isolate in a local workerd, read
 * through workerd's inspector (the stack must start with `inspector: true`).
 * workerd's resident memory also holds Miniflare's own services, KV among
 * them, which grow with the data stored; the isolate's live heap is the
 * Worker's own memory, the part a leak in our code would grow.
 */
import type { Miniflare } from "miniflare";

/**
 * MiB of live objects in the isolate: the sum of the node sizes of a heap
 * snapshot, which V8 takes after a full garbage collection (workerd's
 * inspector does not answer HeapProfiler.collectGarbage, and V8's usedSize
 * swings with uncollected garbage). A snapshot pauses the isolate for a moment.
 */
export async function isolateLiveHeapMiB(mf: Miniflare, workerName: string): Promise<number> {
  const inspector = await mf.getInspectorURL();
  const socket = new WebSocket(new URL(`/core:user:${workerName}`, inspector));
  try {
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`cannot reach workerd's inspector for ${workerName} at ${inspector.href}`));
    });
    const chunks: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("workerd's inspector did not finish a heap snapshot in 60 s")), 60_000);
      socket.onmessage = (message) => {
        const reply = JSON.parse(String(message.data)) as { id?: number; method?: string; params?: { chunk: string } };
        if (reply.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(reply.params!.chunk);
        else if (reply.id === 1) {
          clearTimeout(timer);
          resolve();
        }
      };
      socket.send(JSON.stringify({ id: 1, method: "HeapProfiler.takeHeapSnapshot", params: { reportProgress: false } }));
    });
    const snapshot = JSON.parse(chunks.join("")) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
    const fields = snapshot.snapshot.meta.node_fields;
    let bytes = 0;
    for (let i = fields.indexOf("self_size"); i < snapshot.nodes.length; i += fields.length) bytes += snapshot.nodes[i]!;
    return bytes / 2 ** 20;
  } finally {
    socket.close();
  }
}
