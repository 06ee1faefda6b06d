// The App Router route handler (app/api/verify-face/route.ts), called with plain Web Requests as
// Next.js calls it, its Replicate client pointed at the real local Cog server (REPLICATE_BASE_URL);
// and handleVerifyFace()'s limits: the body cap, the authorize() hook, the timeout, a deployment.
import assert from "node:assert/strict";
import { before, test } from "node:test";

import Replicate from "replicate";

import { fixedWindowLimiter, rateLimited } from "../lib/authorize.js";
import { DEFAULT_TIMEOUT_MS, handleVerifyFace, MESSAGES } from "../lib/verify-face.js";
import { dataUri, MODEL, serverUrl, startProxy } from "./helpers.js";
import { startStandIn } from "./replicate-standin.js";

const client = (baseUrl: string) => new Replicate({ auth: "local", baseUrl, useFileOutput: false });

let POST: (request: Request) => Promise<Response>;

before(async () => {
  process.env.REPLICATE_BASE_URL = serverUrl();
  process.env.REPLICATE_API_TOKEN = "local";
  process.env.FACE_MODEL_VERSION = MODEL;
  ({ POST } = await import("../app/api/verify-face/route.js"));
});

const call = (body: unknown) =>
  POST(new Request("http://app.local/api/verify-face", { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) }));

test("the same person: 200, verified", async () => {
  const response = await call({ idImage: dataUri("single-face/obama-240p.jpg"), selfieImage: dataUri("single-face/obama2.jpg") });
  assert.equal(response.status, 200);
  const answer = await response.json();
  assert.equal(answer.verified, true);
  assert.deepEqual(Object.keys(answer).sort(), ["message", "reason", "similarity", "verified"]);
});

test("a selfie with no face: 200, not verified, with the message to show", async () => {
  const response = await call({ idImage: dataUri("single-face/obama-240p.jpg"), selfieImage: dataUri("no-face/pacman.png") });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {
    verified: false, similarity: null, reason: "image2_no_face", message: "Please retake your selfie: no face was found.",
  });
});

test("a malformed request: 400", async () => {
  for (const body of ["not json", { idImage: "x" }, { idImage: 1, selfieImage: 2 }]) {
    const response = await call(body);
    assert.equal(response.status, 400);
    assert.equal((await response.json()).verified, false);
  }
});

test("no model configured: 500, not verified", async () => {
  const saved = process.env.FACE_MODEL_VERSION;
  delete process.env.FACE_MODEL_VERSION;
  try {
    const response = await call({ idImage: dataUri("single-face/obama-240p.jpg"), selfieImage: dataUri("single-face/obama2.jpg") });
    assert.equal(response.status, 500);
    assert.equal((await response.json()).verified, false);
  } finally {
    process.env.FACE_MODEL_VERSION = saved;
  }
});

test("the route's limits: maxDuration above the model call's own timeout, Node.js runtime", async () => {
  const route = await import("../app/api/verify-face/route.js");
  assert.equal(route.maxDuration, 60);
  assert.equal(route.runtime, "nodejs");
  assert.ok(DEFAULT_TIMEOUT_MS < route.maxDuration * 1000, "verifyFace answers before the platform cuts the request");
});

test("a body over the cap: 413 with its own sentence, the model not called", async () => {
  const proxy = await startProxy(serverUrl(), []);
  try {
    const body = JSON.stringify({ idImage: dataUri("single-face/obama.jpg"), selfieImage: dataUri("single-face/obama.jpg") });
    const options = { replicate: client(proxy.url), model: MODEL, maxBodyBytes: 300_000 };
    for (const headers of [{}, { "content-length": String(Buffer.byteLength(body)) }] as Record<string, string>[]) {
      const response = await handleVerifyFace(new Request("http://app.local/api/verify-face", { method: "POST", body, headers }), options);
      assert.equal(response.status, 413);
      assert.deepEqual(await response.json(), {
        verified: false, similarity: null, reason: "too_large", message: "The photos are too large to send. Please use smaller photos.",
      });
    }
    assert.deepEqual(proxy.seen, []);
    // The route's default cap: 2 MB.
    const huge = await call({ idImage: `data:image/jpeg;base64,${"A".repeat(2_100_000)}`, selfieImage: "x" });
    assert.equal(huge.status, 413);
  } finally {
    await proxy.close();
  }
});

test("authorize(request): its answer stops the request before the model is called", async () => {
  const proxy = await startProxy(serverUrl(), []);
  try {
    const body = JSON.stringify({ idImage: dataUri("single-face/obama-240p.jpg"), selfieImage: dataUri("single-face/obama2.jpg") });
    const request = () => new Request("http://app.local/api/verify-face", { method: "POST", body, headers: { authorization: "Bearer nope" } });
    const denied = await handleVerifyFace(request(), {
      replicate: client(proxy.url), model: MODEL,
      authorize: (incoming) => (incoming.headers.get("authorization") === "Bearer good" ? null : Response.json({ verified: false, reason: "unauthorized" }, { status: 401 })),
    });
    assert.equal(denied.status, 401);
    assert.deepEqual(proxy.seen, []);
    const allowed = await handleVerifyFace(request(), { replicate: client(proxy.url), model: MODEL, authorize: async () => null });
    assert.equal(allowed.status, 200);
    assert.equal((await allowed.json()).verified, true);
    assert.equal(proxy.seen.length, 1);
  } finally {
    await proxy.close();
  }
});

test("the default authorize hook limits each client's rate: 429 with a sentence", () => {
  const gate = rateLimited(2);
  const from = (ip: string) => new Request("http://app.local/api/verify-face", { method: "POST", headers: { "x-forwarded-for": ip } });
  assert.equal(gate(from("10.0.0.1")), null);
  assert.equal(gate(from("10.0.0.1")), null);
  const third = gate(from("10.0.0.1"));
  assert.equal(third?.status, 429);
  assert.equal(gate(from("10.0.0.2")), null, "another client is counted apart");
  assert.equal(rateLimited(0)(from("10.0.0.1")), null, "0: no limit");
  const limiter = fixedWindowLimiter(1, 1000);
  assert.deepEqual([limiter.allow("a", 0), limiter.allow("a", 500), limiter.allow("a", 1000)], [true, false, true]);
});

test("the model call's timeout: 504 with its own sentence, not the platform's", async () => {
  const standIn = await startStandIn(serverUrl(), "hang");
  try {
    const body = JSON.stringify({ idImage: dataUri("single-face/obama-240p.jpg"), selfieImage: dataUri("single-face/obama2.jpg") });
    const response = await handleVerifyFace(new Request("http://app.local/api/verify-face", { method: "POST", body }), {
      replicate: client(standIn.url), model: MODEL, timeoutMs: 400, pollIntervalMs: 50,
    });
    assert.equal(response.status, 504);
    assert.deepEqual(await response.json(), { verified: false, similarity: null, reason: "timeout", message: MESSAGES.timeout });
    assert.equal(standIn.predictionsCancelled.length, 1);
  } finally {
    await standIn.close();
  }
});

test("a deployment from the route's options: FACE_MODEL_DEPLOYMENT's path", async () => {
  const standIn = await startStandIn(serverUrl(), "sync");
  try {
    const body = JSON.stringify({ idImage: dataUri("single-face/obama-240p.jpg"), selfieImage: dataUri("single-face/obama2.jpg") });
    const response = await handleVerifyFace(new Request("http://app.local/api/verify-face", { method: "POST", body }), {
      replicate: client(standIn.url), deployment: "acme/kyc-faces",
    });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).verified, true);
    assert.deepEqual(standIn.seen, ["POST /deployments/acme/kyc-faces/predictions"]);
    const bad = await handleVerifyFace(new Request("http://app.local/api/verify-face", { method: "POST", body }), {
      replicate: client(standIn.url), deployment: "not a deployment",
    });
    assert.equal(bad.status, 500);
  } finally {
    await standIn.close();
  }
});
