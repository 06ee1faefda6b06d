// Shared by the tests: the real local Cog server's address, the real images from ../shared, and a
// fault-injecting HTTP proxy that stands between a client and that server.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The Cog server that tests/test_nextjs.py starts (`python -m cog.server.http`, with the schema). */
export function serverUrl(): string {
  const url = process.env.COG_SERVER_URL;
  if (!url) throw new Error("COG_SERVER_URL is not set: run these tests through `.venv/bin/python -m pytest tests/test_nextjs.py`");
  return url;
}

/** Any "owner/name:version": the local server serves one model and ignores the version. */
export const MODEL = "local/faceverify:test" as const;

const shared = process.env.FACEVERIFY_SHARED ?? resolve(here, "../../../../../shared");
const MEDIA: Record<string, string> = { ".jpg": "image/jpeg", ".png": "image/png" };

/** A file from ../shared/data/cases as the data URI a browser's readAsDataURL would give. */
export function dataUri(relative: string): string {
  const bytes = readFileSync(resolve(shared, "data", "cases", relative));
  return `data:${MEDIA[extname(relative)]};base64,${bytes.toString("base64")}`;
}

/** What the proxy does with one request: pass it on, answer with an HTTP status, drop the
 * connection, or pass it on and rewrite the output of the prediction it returns. */
export type Fault = "pass" | 409 | 429 | 500 | 503 | "drop" | ((output: Record<string, unknown>) => unknown);

export interface Proxy {
  url: string;
  /** Method and path of every request seen, in order. */
  seen: string[];
  /** The HTTP status answered to each of them ("drop" for a dropped connection). */
  statuses: (number | "drop")[];
  close(): Promise<void>;
}

async function body(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A real HTTP server in front of `target` that applies `faults` to the requests it gets, one
 * each, then passes everything on unchanged. */
export async function startProxy(target: string, faults: Fault[]): Promise<Proxy> {
  const queue = [...faults];
  const seen: string[] = [];
  const statuses: (number | "drop")[] = [];
  const server: Server = createServer(async (request, response) => {
    seen.push(`${request.method} ${request.url}`);
    const data = await body(request);
    const fault = queue.shift() ?? "pass";
    if (fault === "drop") {
      statuses.push("drop");
      request.socket.destroy();
      return;
    }
    if (typeof fault === "number") {
      statuses.push(fault);
      response.writeHead(fault, { "Content-Type": "application/json" }).end(JSON.stringify({ detail: `injected ${fault}` }));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(request.headers)) {
      if (typeof value === "string" && !["host", "content-length", "connection"].includes(key)) headers[key] = value;
    }
    const upstream = await fetch(new URL(request.url ?? "/", target), {
      method: request.method,
      headers,
      body: ["GET", "HEAD"].includes(request.method ?? "GET") ? undefined : new Uint8Array(data),
    });
    let text = await upstream.text();
    if (typeof fault === "function" && !upstream.ok) queue.unshift(fault); // rewrite the next answer instead
    if (typeof fault === "function" && upstream.ok) {
      const prediction = JSON.parse(text) as { output: Record<string, unknown> };
      prediction.output = fault(prediction.output) as Record<string, unknown>;
      text = JSON.stringify(prediction);
    }
    statuses.push(upstream.status);
    response.writeHead(upstream.status, { "Content-Type": upstream.headers.get("content-type") ?? "application/json" }).end(text);
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    statuses,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
