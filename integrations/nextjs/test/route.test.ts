// The App Router route handler (app/api/verify-face/route.ts), called with plain Web Requests as
// Next.js calls it, its Replicate client pointed at the real local Cog server (REPLICATE_BASE_URL).
import assert from "node:assert/strict";
import { before, test } from "node:test";

import { dataUri, MODEL, serverUrl } from "./helpers.js";

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
