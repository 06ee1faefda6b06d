// verifyFace() against a stand-in of Replicate's HTTP API (test/replicate-standin.ts) in front of the
// real local Cog server: an image too large to go inline is uploaded through the Files API, the Cog
// server downloads it from there, and the file is deleted once the prediction has ended, whatever the
// outcome; a prediction still running at the time limit is cancelled; a deployment is called by its
// own endpoint; a prediction that is still running when created is polled to its end.
import assert from "node:assert/strict";
import { test } from "node:test";

import Replicate from "replicate";

import { INLINE_LIMIT, MESSAGES, verifyFace, type VerifyFaceOptions } from "../lib/verify-face.js";
import { dataUri, MODEL, serverUrl } from "./helpers.js";
import { startStandIn, type PredictionMode, type StandIn } from "./replicate-standin.js";

const large = dataUri("single-face/obama.jpg");
const largeAgain = dataUri("single-face/obama3.jpg");
const small = dataUri("single-face/obama_small.jpg");
// Another photo of the same person: obama_small.jpg is a copy of obama.jpg's photo (image2_same_photo).
const otherPhoto = dataUri("single-face/obama2.jpg");

const options = (standIn: StandIn, extra: Partial<VerifyFaceOptions> = {}): VerifyFaceOptions => ({
  replicate: new Replicate({ auth: "local", baseUrl: standIn.url, useFileOutput: false }),
  model: MODEL,
  retryDelayMs: 20,
  pollIntervalMs: 50,
  ...extra,
});

async function withStandIn<T>(mode: PredictionMode, run: (standIn: StandIn) => Promise<T>): Promise<T> {
  const standIn = await startStandIn(serverUrl(), mode);
  try {
    return await run(standIn);
  } finally {
    await standIn.close();
  }
}

test("the large test images are over the inline limit", () => {
  assert.ok(large.length > INLINE_LIMIT && largeAgain.length > INLINE_LIMIT && small.length <= INLINE_LIMIT && otherPhoto.length <= INLINE_LIMIT);
});

test("keep nothing: uploaded images are deleted once the prediction has succeeded", async () => {
  await withStandIn("sync", async (standIn) => {
    const result = await verifyFace(large, largeAgain, options(standIn));
    assert.equal(result.verified, true, JSON.stringify(result));
    assert.equal(standIn.filesCreated.length, 2);
    assert.equal(standIn.downloads, 2, "the Cog server read both images from their upload URLs");
    assert.deepEqual([...standIn.filesDeleted].sort(), [...standIn.filesCreated].sort());
    assert.equal(standIn.held(), 0);
    const last = standIn.seen.slice(-2);
    assert.ok(last.every((entry) => entry.startsWith("DELETE /files/")), `deleted after the prediction: ${standIn.seen.join(", ")}`);
  });
});

test("keep nothing: deleted when the prediction is refused, fails or the service errs", async () => {
  for (const mode of [422, 500, 404] as PredictionMode[]) {
    await withStandIn(mode, async (standIn) => {
      const result = await verifyFace(large, small, options(standIn, { maxAttempts: 2 }));
      assert.equal(result.verified, false);
      assert.equal(standIn.filesCreated.length, 1, `mode ${mode}`);
      assert.deepEqual(standIn.filesDeleted, standIn.filesCreated, `mode ${mode}`);
    });
  }
});

test("keep nothing: when the second upload fails, the first is deleted", async () => {
  await withStandIn("sync", async (standIn) => {
    standIn.uploadStatus = 400;
    standIn.failUploadsAfter = 1;
    const result = await verifyFace(large, largeAgain, options(standIn));
    assert.deepEqual([result.verified, result.reason], [false, "request_rejected"]);
    assert.equal(standIn.filesCreated.length, 1);
    assert.deepEqual(standIn.filesDeleted, standIn.filesCreated);
    assert.equal(standIn.predictionsCreated.length, 0);
  });
});

test("a timeout on the model call: its own reason, the prediction cancelled, the upload deleted", async () => {
  await withStandIn("hang", async (standIn) => {
    const started = Date.now();
    const result = await verifyFace(large, small, options(standIn, { timeoutMs: 600 }));
    assert.deepEqual([result.verified, result.reason, result.message], [false, "timeout", MESSAGES.timeout]);
    assert.ok(Date.now() - started < 3000, `answered after ${Date.now() - started} ms`);
    assert.deepEqual(standIn.predictionsCancelled, standIn.predictionsCreated);
    assert.equal(standIn.predictionsCreated.length, 1);
    assert.deepEqual(standIn.filesDeleted, standIn.filesCreated);
    assert.equal(standIn.held(), 0);
  });
});

test("a prediction still running when created is polled to its end", async () => {
  await withStandIn("async", async (standIn) => {
    const result = await verifyFace(otherPhoto, large, options(standIn));
    assert.equal(result.verified, true, JSON.stringify(result));
    assert.ok(standIn.seen.some((entry) => entry.startsWith("GET /predictions/")), standIn.seen.join(", "));
    assert.deepEqual(standIn.predictionsCancelled, []);
    assert.equal(standIn.held(), 0);
  });
});

test("upload: false uploads nothing and answers image1_too_large / image2_too_large", async () => {
  await withStandIn("sync", async (standIn) => {
    const first = await verifyFace(large, small, options(standIn, { upload: false }));
    assert.deepEqual([first.verified, first.reason], [false, "image1_too_large"]);
    assert.match(first.message ?? "", /smaller photo of your ID document/);
    const second = await verifyFace(small, large, options(standIn, { upload: false }));
    assert.deepEqual([second.verified, second.reason], [false, "image2_too_large"]);
    assert.deepEqual(standIn.seen, []);
  });
});

test("a deployment is called through its own endpoint", async () => {
  await withStandIn("sync", async (standIn) => {
    const result = await verifyFace(otherPhoto, dataUri("single-face/obama-240p.jpg"), options(standIn, { model: undefined, deployment: "acme/faceverify-kyc" }));
    assert.equal(result.verified, true, JSON.stringify(result));
    assert.deepEqual(standIn.seen, ["POST /deployments/acme/faceverify-kyc/predictions"]);
    const refused = await verifyFace(small, dataUri("no-face/dogs.jpg"), options(standIn, { model: undefined, deployment: "acme/faceverify-kyc" }));
    assert.equal(refused.reason, "image2_no_face");
  });
});

test("a pinned version goes to POST /predictions; one of model and deployment is needed", async () => {
  await withStandIn("sync", async (standIn) => {
    await verifyFace(small, small, options(standIn));
    assert.deepEqual(standIn.seen, ["POST /predictions"]);
    await assert.rejects(verifyFace(small, small, options(standIn, { deployment: "acme/x" })), /exactly one of model and deployment/);
    await assert.rejects(verifyFace(small, small, options(standIn, { model: undefined })), /exactly one of model and deployment/);
  });
});
