// The Replicate JavaScript client itself (replicate 1.4.0, package-lock.json), `replicate.run()`
// through `baseUrl` against the real local Cog server, which validates with the committed schema.
// Nothing is adapted: the client's POST /predictions and the server's answer are as they are.
import assert from "node:assert/strict";
import { test } from "node:test";

import Replicate from "replicate";

import { dataUri, MODEL, serverUrl } from "./helpers.js";

interface Output {
  match: boolean;
  similarity: number | null;
  threshold: number;
  error_code: string | null;
}

const replicate = () => new Replicate({ auth: "local", baseUrl: serverUrl(), useFileOutput: false });

/** replicate.run(), tried again when the Cog server answers 409 (both of its prediction slots
 * busy), as any client of a Cog server must; Replicate itself queues instead. */
async function run(input: object): Promise<Output> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await replicate().run(MODEL, { input })) as Output;
    } catch (error) {
      if ((error as { response?: Response }).response?.status !== 409 || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const obama = dataUri("single-face/obama-240p.jpg");
const obamaAgain = dataUri("single-face/obama2.jpg");

test("same person: match", async () => {
  const output = await run({ image1: obama, image2: obamaAgain });
  assert.equal(output.match, true);
  assert.equal(output.error_code, null);
  assert.ok(output.similarity !== null && output.similarity >= output.threshold);
});

test("different people: no match", async () => {
  const output = await run({ image1: obama, image2: dataUri("single-face/alex-lacamoire.png") });
  assert.equal(output.match, false);
  assert.equal(output.error_code, null);
  assert.ok(output.similarity !== null && output.similarity < output.threshold);
});

test("a selfie with no face: a succeeded prediction with image2_no_face", async () => {
  const output = await run({ image1: obama, image2: dataUri("no-face/dogs.jpg") });
  assert.deepEqual([output.match, output.similarity, output.error_code], [false, null, "image2_no_face"]);
});

test("a threshold given is applied", async () => {
  const strict = await run({ image1: obama, image2: obamaAgain, threshold: 0.99 });
  assert.deepEqual([strict.threshold, strict.match], [0.99, false]);
  const lenient = await run({ image1: obama, image2: obamaAgain, threshold: 0.5 });
  assert.deepEqual([lenient.threshold, lenient.match], [0.5, true]);
  assert.equal(strict.similarity, lenient.similarity);
});

test("a bad threshold: the client throws the server's 422", async () => {
  for (const threshold of [1.5, "0.5"]) {
    await assert.rejects(run({ image1: obama, image2: obamaAgain, threshold }), (error: Error & { response?: Response }) => {
      assert.equal(error.name, "ApiError");
      assert.equal(error.response?.status, 422);
      assert.match(error.message, /threshold/);
      return true;
    });
  }
});
