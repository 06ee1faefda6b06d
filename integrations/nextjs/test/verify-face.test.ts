// verifyFace() against the real local Cog server on the inline path (data URIs of at most
// INLINE_LIMIT characters), and through a fault-injecting proxy in front of that same server for
// retries and for outputs that do not match the schema or break the model's contract. The upload
// path, which needs Replicate's Files API, runs against a stand-in of it in keep-nothing.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";

import Replicate from "replicate";

import { INLINE_LIMIT, MESSAGES, verifyFace, type VerifyFaceOptions } from "../lib/verify-face.js";
import { dataUri, type Fault, MODEL, serverUrl, startProxy } from "./helpers.js";

const client = (baseUrl: string) => new Replicate({ auth: "local", baseUrl, useFileOutput: false });
const options = (baseUrl = serverUrl(), extra: Partial<VerifyFaceOptions> = {}): VerifyFaceOptions => ({
  replicate: client(baseUrl),
  model: MODEL,
  retryDelayMs: 20,
  ...extra,
});

const obama = dataUri("single-face/obama-240p.jpg");
const obamaAgain = dataUri("single-face/obama2.jpg");
const alex = dataUri("single-face/alex-lacamoire.png");
const dogs = dataUri("no-face/dogs.jpg");

test("the test images all take the inline path", () => {
  for (const image of [obama, obamaAgain, alex, dogs]) assert.ok(image.length <= INLINE_LIMIT);
});

test("same person: verified", async () => {
  const result = await verifyFace(obama, obamaAgain, options());
  assert.equal(result.verified, true);
  assert.equal(result.reason, null);
  assert.ok(result.similarity !== null && result.similarity > 0.5);
});

test("different people: not verified, no_match", async () => {
  const result = await verifyFace(obama, alex, options());
  assert.deepEqual([result.verified, result.reason, result.message], [false, "no_match", MESSAGES.no_match]);
  assert.ok(result.similarity !== null);
});

test("a selfie with no face: the message asks for a new selfie", async () => {
  const result = await verifyFace(obama, dogs, options());
  assert.deepEqual(result, {
    verified: false, similarity: null, reason: "image2_no_face", message: "Please retake your selfie: no face was found.",
  });
});

test("an ID photo with no face: the message names the document", async () => {
  const result = await verifyFace(dogs, obama, options());
  assert.equal(result.reason, "image1_no_face");
  assert.match(result.message ?? "", /ID document/);
});

test("a selfie with a quality issue: reported only, or refused with requireSelfieQuality", async () => {
  // The partial face is larger than INLINE_LIMIT; a local Cog server takes it inline.
  const partial = dataUri("partial-face/obama_partial_face2.jpg");
  const reported = await verifyFace(obama, partial, options(serverUrl(), { inlineLimit: 2_000_000 }));
  assert.notEqual(reported.reason, "image2_poor_quality");
  const refused = await verifyFace(obama, partial, options(serverUrl(), { inlineLimit: 2_000_000, requireSelfieQuality: true }));
  assert.deepEqual(refused, {
    verified: false, similarity: null, reason: "image2_poor_quality", message: "Please retake your selfie with your whole face in the picture.",
  });
});

test("a threshold given is applied", async () => {
  assert.equal((await verifyFace(obama, obamaAgain, options(serverUrl(), { threshold: 0.99 }))).reason, "no_match");
  assert.equal((await verifyFace(obama, obamaAgain, options(serverUrl(), { threshold: 0.5 }))).verified, true);
});

test("a bad threshold: rejected by the server (422), not retried, not verified", async () => {
  const proxy = await startProxy(serverUrl(), []);
  try {
    const result = await verifyFace(obama, obamaAgain, options(proxy.url, { threshold: 1.5 }));
    assert.deepEqual([result.verified, result.reason], [false, "request_rejected"]);
    assert.match(result.detail ?? "", /422/);
    // One 422 and nothing after it (a 409 from a busy server before it would be retried).
    assert.deepEqual(proxy.statuses.filter((status) => status !== 409), [422]);
  } finally {
    await proxy.close();
  }
});

test("not a base64 data URI: image1_invalid without calling the model", async () => {
  const proxy = await startProxy(serverUrl(), []);
  try {
    for (const bad of ["https://example.com/id.jpg", "data:image/jpeg;base64,abc", obama.replace(/[+/]/g, "-")]) {
      const result = await verifyFace(bad, obamaAgain, options(proxy.url));
      assert.deepEqual([result.verified, result.reason], [false, "image1_invalid"]);
    }
    assert.equal(proxy.seen.length, 0);
  } finally {
    await proxy.close();
  }
});

async function throughProxy(faults: Fault[], maxAttempts = 3) {
  const proxy = await startProxy(serverUrl(), faults);
  try {
    return { result: await verifyFace(obama, obamaAgain, options(proxy.url, { maxAttempts })), statuses: proxy.statuses };
  } finally {
    await proxy.close();
  }
}

test("transient failures (409, 503, a dropped connection) are retried", async () => {
  for (const faults of [[409, 503], ["drop"], [500, "drop"]] as Fault[][]) {
    const { result, statuses } = await throughProxy(faults, 5);
    assert.equal(result.verified, true, `after ${faults.join(", ")}`);
    assert.deepEqual(statuses.slice(0, faults.length), faults);
    assert.equal(statuses.at(-1), 200);
  }
});

test("retries are bounded: then not verified, service_unavailable", async () => {
  const { result, statuses } = await throughProxy([503, 409, 503, 503], 3);
  assert.deepEqual([result.verified, result.reason, result.message], [false, "service_unavailable", MESSAGES.unavailable]);
  assert.deepEqual(statuses, [503, 409, 503]);
});

test("an output that does not match the schema fails closed", async () => {
  const rewrites: Fault[] = [
    (output) => ({ ...output, match: "true" }),
    (output) => ({ ...output, similarity: "0.9" }),
    (output) => ({ ...output, added_later: 1 }),
    (output) => Object.fromEntries(Object.entries(output).filter(([key]) => key !== "match")),
    () => null,
    () => "match",
  ];
  for (const rewrite of rewrites) {
    const { result } = await throughProxy([rewrite]);
    assert.deepEqual([result.verified, result.reason], [false, "unexpected_output"], String(rewrite));
  }
});

test("fail closed on the contract: outputs that break it are never verified", async () => {
  // Each keeps the schema but breaks the model's own contract; the real answer was a match.
  const breaches: [string, Fault][] = [
    ["match true with error_code \"\"", (output) => ({ ...output, error_code: "" })],
    ["match true with a similarity below the threshold", (output) => ({ ...output, similarity: (output.threshold as number) - 0.01 })],
    ["match true with no face in the selfie", (output) => ({ ...output, image2_face_count: 0 })],
    ["match true with no face in the document", (output) => ({ ...output, image1_face_count: 0 })],
    ["match true with an error sentence set", (output) => ({ ...output, error: "image2: something went wrong" })],
    ["match true with an error_code set", (output) => ({ ...output, error_code: "image2_something_new" })],
    ["match true without a similarity", (output) => ({ ...output, similarity: null })],
    ["match false at a similarity above the threshold", (output) => ({ ...output, match: false })],
  ];
  for (const [name, rewrite] of breaches) {
    const { result } = await throughProxy([rewrite]);
    assert.deepEqual([result.verified, result.reason, result.message], [false, "unexpected_output", MESSAGES.unavailable], name);
  }
  const asked = await verifyFace(obama, obamaAgain, options(serverUrl(), { threshold: 0.5 }));
  assert.equal(asked.verified, true, "the same pair with the threshold asked for and answered");
  const proxy = await startProxy(serverUrl(), [(output) => ({ ...output, threshold: 0.3 })]);
  try {
    const other = await verifyFace(obama, obamaAgain, options(proxy.url, { threshold: 0.5 }));
    assert.deepEqual([other.verified, other.reason], [false, "unexpected_output"], "a threshold other than the one asked for");
  } finally {
    await proxy.close();
  }
});

test("an error_code with match false is the image's problem, with its sentence", async () => {
  const { result } = await throughProxy([(output) => ({ ...output, match: false, similarity: null, error_code: "image2_same_photo", error: "image2: a copy" })]);
  assert.deepEqual(result, { verified: false, similarity: null, reason: "image2_same_photo", message: "Take a new selfie with the camera: a copy of the document's photo cannot be used." });
});

test("multiple_faces in the selfie: refused by default, with its sentence", async () => {
  const { result } = await throughProxy([(output) => ({ ...output, image2_quality_issues: ["multiple_faces"] })]);
  assert.deepEqual([result.verified, result.reason, result.message], [false, "image2_multiple_faces", "Only you should be in the selfie. Please retake it alone."]);
  assert.ok(result.similarity !== null);
  const proxy = await startProxy(serverUrl(), [(output) => ({ ...output, image2_quality_issues: ["multiple_faces"] })]);
  try {
    const allowed = await verifyFace(obama, obamaAgain, options(proxy.url, { allowMultipleFaces: true }));
    assert.equal(allowed.verified, true, "allowMultipleFaces: true accepts it");
  } finally {
    await proxy.close();
  }
});

test("a real photo of the document's person with someone else: refused", async () => {
  // obama_and_biden.jpg is larger than INLINE_LIMIT; a local Cog server takes it inline.
  const group = dataUri("multi-face/obama_and_biden.jpg");
  const result = await verifyFace(dataUri("single-face/obama.jpg"), group, options(serverUrl(), { inlineLimit: 4_000_000 }));
  assert.equal(result.verified, false);
  assert.ok(["image2_multiple_faces"].includes(result.reason ?? ""), String(result.reason));
  assert.equal(result.message, "Only you should be in the selfie. Please retake it alone.");
});

test("a large image takes the upload path: the client posts it to the Files API", async () => {
  const proxy = await startProxy(serverUrl(), []);
  try {
    const large = dataUri("single-face/obama.jpg");
    assert.ok(large.length > INLINE_LIMIT);
    const result = await verifyFace(large, obamaAgain, options(proxy.url));
    // A Cog server has no Files API (404): the client fails and verifyFace fails closed.
    assert.deepEqual(proxy.seen, ["POST /files"]);
    assert.deepEqual([result.verified, result.reason], [false, "request_rejected"]);
  } finally {
    await proxy.close();
  }
});
