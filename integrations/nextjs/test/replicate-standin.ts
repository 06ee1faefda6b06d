// A local stand-in for the parts of Replicate's HTTP API that verifyFace() calls, in front of the
// real local Cog server: the Files API (POST /files, DELETE /files/{id}, and the file's URL, which
// the Cog server downloads), predictions of a version (POST /predictions) or of a deployment (POST
// /deployments/{owner}/{name}/predictions), GET /predictions/{id} and POST /predictions/{id}/cancel.
// It records what was created and deleted, so a test can see that nothing was kept.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** How predictions are answered: at once with the model's answer (as with `Prefer: wait`),
 * "starting" and then the answer when polled, never finished, or with an HTTP error status. */
export type PredictionMode = "sync" | "async" | "hang" | number;

interface StoredPrediction {
  id: string;
  status: string;
  output?: unknown;
  error?: unknown;
  done?: Promise<void>;
}

export interface StandIn {
  url: string;
  /** Method and path of every request, in order. */
  seen: string[];
  /** Ids of the files uploaded, and of those deleted. */
  filesCreated: string[];
  filesDeleted: string[];
  /** Files still held now. */
  held(): number;
  /** How many times a file's content was downloaded (by the Cog server). */
  downloads: number;
  /** Ids of the predictions created, and of those cancelled. */
  predictionsCreated: string[];
  predictionsCancelled: string[];
  /** Answer uploads with this status instead (e.g. 500), from the `failUploadsAfter`-th on. */
  uploadStatus: number | null;
  failUploadsAfter: number;
  mode: PredictionMode;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Start the stand-in on a free local port, sending predictions to the Cog server at `cog`. */
export async function startStandIn(cog: string, mode: PredictionMode = "sync"): Promise<StandIn> {
  const files = new Map<string, { bytes: Buffer; type: string }>();
  const predictions = new Map<string, StoredPrediction>();
  let url = "";

  const runOnCog = async (input: object): Promise<Omit<StoredPrediction, "id">> => {
    for (;;) {
      const response = await fetch(`${cog}/predictions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ input }),
      });
      if (response.status === 409) {
        await new Promise((resolve) => setTimeout(resolve, 50)); // both Cog slots busy: Replicate would queue
        continue;
      }
      const body = (await response.json()) as { status?: string; output?: unknown; error?: unknown; detail?: unknown };
      if (!response.ok) return { status: "failed", error: JSON.stringify(body.detail ?? body) };
      return { status: body.status ?? "failed", output: body.output, error: body.error ?? null };
    }
  };

  const send = (response: import("node:http").ServerResponse, status: number, body?: unknown) => {
    response.writeHead(status, { "Content-Type": "application/json" }).end(body === undefined ? "" : JSON.stringify(body));
  };

  const state: StandIn = {
    url: "",
    seen: [],
    filesCreated: [],
    filesDeleted: [],
    held: () => files.size,
    downloads: 0,
    predictionsCreated: [],
    predictionsCancelled: [],
    uploadStatus: null,
    failUploadsAfter: 0,
    mode,
    close: () => new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    }),
  };

  const server: Server = createServer(async (request, response) => {
    const path = new URL(request.url ?? "/", "http://standin").pathname;
    const method = request.method ?? "GET";
    state.seen.push(`${method} ${path}`);
    const body = await readBody(request);
    let match: RegExpExecArray | null;

    if (method === "POST" && path === "/files") {
      if (state.uploadStatus !== null && state.filesCreated.length >= state.failUploadsAfter) {
        return send(response, state.uploadStatus, { detail: `stand-in answers ${state.uploadStatus}` });
      }
      const form = await new Request("http://standin/files", {
        method: "POST",
        headers: { "content-type": request.headers["content-type"] ?? "" },
        body: new Uint8Array(body),
      }).formData();
      const content = form.get("content");
      if (!(content instanceof Blob)) return send(response, 400, { detail: "no content" });
      const id = randomUUID().replaceAll("-", "");
      files.set(id, { bytes: Buffer.from(await content.arrayBuffer()), type: content.type });
      state.filesCreated.push(id);
      return send(response, 201, { id, content_type: content.type, size: content.size, urls: { get: `${url}/files/${id}/content` } });
    }
    if ((match = /^\/files\/([^/]+)\/content$/.exec(path)) && method === "GET") {
      const file = files.get(match[1]);
      if (!file) return send(response, 404, { detail: "Not found." });
      state.downloads += 1;
      response.writeHead(200, { "Content-Type": file.type || "application/octet-stream" }).end(file.bytes);
      return;
    }
    if ((match = /^\/files\/([^/]+)$/.exec(path)) && method === "DELETE") {
      if (!files.delete(match[1])) return send(response, 404, { detail: "Not found." });
      state.filesDeleted.push(match[1]);
      return send(response, 204);
    }
    if (method === "POST" && (path === "/predictions" || /^\/deployments\/[^/]+\/[^/]+\/predictions$/.test(path))) {
      if (typeof state.mode === "number") return send(response, state.mode, { detail: `stand-in answers ${state.mode}` });
      const { input } = JSON.parse(body.toString()) as { input: object };
      const id = randomUUID().replaceAll("-", "");
      state.predictionsCreated.push(id);
      const prediction: StoredPrediction = { id, status: "starting" };
      predictions.set(id, prediction);
      if (state.mode === "sync") {
        Object.assign(prediction, await runOnCog(input));
      } else if (state.mode === "async") {
        prediction.done = runOnCog(input).then((result) => void Object.assign(prediction, result));
      }
      return send(response, 201, { id, status: prediction.status, output: prediction.output ?? null, error: prediction.error ?? null });
    }
    if ((match = /^\/predictions\/([^/]+)$/.exec(path)) && method === "GET") {
      const prediction = predictions.get(match[1]);
      if (!prediction) return send(response, 404, { detail: "Not found." });
      if (prediction.status === "starting") prediction.status = prediction.done ? "processing" : "starting";
      return send(response, 200, { id: prediction.id, status: prediction.status, output: prediction.output ?? null, error: prediction.error ?? null });
    }
    if ((match = /^\/predictions\/([^/]+)\/cancel$/.exec(path)) && method === "POST") {
      const prediction = predictions.get(match[1]);
      if (!prediction) return send(response, 404, { detail: "Not found." });
      state.predictionsCancelled.push(prediction.id);
      prediction.status = "canceled";
      return send(response, 200, { id: prediction.id, status: "canceled", output: null, error: null });
    }
    return send(response, 404, { detail: `stand-in has no ${method} ${path}` });
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.url = url;
  return state;
}
