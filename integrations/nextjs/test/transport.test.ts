// Unit tests of what needs no server: the inline-or-upload decision (the upload itself needs
// Replicate's Files API, absent from a local Cog server), the error messages, and the output check.
import assert from "node:assert/strict";
import { test } from "node:test";

import { outputSchema } from "../lib/generated/openapi.js";
import { chooseTransport, INLINE_LIMIT, isOutput, isTransient, messageFor, PROBLEM_MESSAGES, QUALITY_MESSAGES, schemaErrors } from "../lib/verify-face.js";

const uri = (bytes: number, media = "image/jpeg") =>
  `data:${media};base64,${Buffer.alloc(bytes, 7).toString("base64")}`;

test("a data URI of at most INLINE_LIMIT characters is sent inline, unchanged", () => {
  const small = uri(1000);
  assert.deepEqual(chooseTransport(small), { kind: "inline", value: small });
  const prefix = "data:image/jpeg;base64,".length;
  const largestInline = Math.floor((INLINE_LIMIT - prefix) / 4) * 3;
  assert.ok(uri(largestInline).length <= INLINE_LIMIT && uri(largestInline + 3).length > INLINE_LIMIT);
  assert.equal(chooseTransport(uri(largestInline))?.kind, "inline");
  assert.equal(chooseTransport(uri(largestInline + 3))?.kind, "upload");
});

test("a larger one is sent as a Blob of the decoded bytes with the declared media type", async () => {
  const large = uri(200_000, "image/png");
  assert.ok(large.length > INLINE_LIMIT);
  const transport = chooseTransport(large);
  assert.equal(transport?.kind, "upload");
  const blob = transport!.value as Blob;
  assert.equal(blob.type, "image/png");
  assert.deepEqual(Buffer.from(await blob.arrayBuffer()), Buffer.alloc(200_000, 7));
  assert.equal(chooseTransport(uri(1000), 500)?.kind, "upload", "the limit is an option");
});

test("only a standard, padded base64 data URI is accepted", () => {
  for (const bad of ["", "abc", "https://example.com/a.jpg", "data:image/jpeg,rawbytes", "data:image/jpeg;base64,abc",
    "data:image/jpeg;base64,ab-_", "data:image/jpeg;base64,ab cd", "/9j/4AAQSkZJRgABAQ=="]) {
    assert.equal(chooseTransport(bad), null, bad);
  }
  assert.equal(chooseTransport("data:;base64,AAAA")?.kind, "inline", "no media type");
});

test("each error code gets a sentence for the right image", () => {
  assert.equal(messageFor("image2_no_face"), "Please retake your selfie: no face was found.");
  assert.match(messageFor("image1_no_face"), /ID document/);
  for (const code of ["image1_missing", "image2_invalid", "image1_too_large", "image2_too_small", "image1_bad_aspect_ratio", "image2_face_unusable"]) {
    assert.doesNotMatch(messageFor(code), /could not check/, code);
  }
  assert.match(messageFor("image3_no_face"), /could not check/);
  assert.match(messageFor("something_new"), /could not check/);
});

test("the selfie checks' codes (the model's image2_same_photo and image2_multiple_faces) have their sentences", () => {
  assert.equal(messageFor("image2_same_photo"), "Take a new selfie with the camera: a copy of the document's photo cannot be used.");
  assert.equal(messageFor("image2_multiple_faces"), "Only you should be in the selfie. Please retake it alone.");
  assert.deepEqual([PROBLEM_MESSAGES.same_photo.length, PROBLEM_MESSAGES.multiple_faces.length], [2, 2]);
  assert.match(messageFor("image2_toString"), /could not check/);
});

test("a selfie refused for its quality gets the sentence of its first known issue", () => {
  assert.equal(messageFor("image2_poor_quality", ["blurry", "too_dark"]), QUALITY_MESSAGES.blurry[1]);
  assert.equal(messageFor("image2_poor_quality", ["something_new", "too_dark"]), QUALITY_MESSAGES.too_dark[1]);
  assert.match(messageFor("image2_poor_quality", []), /selfie: the photo is not clear enough/);
  assert.match(messageFor("image2_poor_quality", ["toString"]), /selfie: the photo is not clear enough/);
  assert.equal(messageFor("image2_no_face", ["blurry"]), "Please retake your selfie: no face was found.");
});

test("the output check follows the generated schema", () => {
  const good = {
    match: true, similarity: 0.9, threshold: 0.38, false_match_rate: null, error_code: null, error: null,
    image1_face_count: 1, image1_face_box: [1, 2, 3, 4], image1_face_score: 0.9,
    image2_face_count: 1, image2_face_box: [1, 2, 3, 4], image2_face_score: 0.8,
    ...Object.fromEntries([1, 2].flatMap((n) => [
      [`image${n}_quality_issues`, n === 2 ? ["blurry"] : []], [`image${n}_quality_score`, 42.5],
      ...["eye_distance", "edge_margin", "yaw", "roll", "sharpness", "underexposure", "overexposure", "second_face"]
        .map((name) => [`image${n}_${name}`, 0.5]),
    ])),
    model_pack: "p",
  };
  assert.deepEqual(Object.keys(good), Object.keys(outputSchema.properties), "every field of the schema");
  assert.ok(isOutput(good));
  assert.deepEqual(schemaErrors(outputSchema, { ...good, image1_face_box: [1, "2"] }), ["output.image1_face_box[1] is not a finite number"]);
  assert.deepEqual(schemaErrors(outputSchema, { ...good, image1_face_count: 1.5 }), ["output.image1_face_count is not an integer"]);
  assert.deepEqual(schemaErrors(outputSchema, { ...good, model_pack: null }), ["output.model_pack is null"]);
  assert.deepEqual(schemaErrors(outputSchema, { ...good, image2_quality_issues: null }), ["output.image2_quality_issues is null"]);
  assert.deepEqual(schemaErrors(outputSchema, { ...good, image2_quality_issues: [3] }), ["output.image2_quality_issues[0] is not a string"]);
  assert.deepEqual(schemaErrors(outputSchema, { ...good, extra: 1 }), ["output.extra is not in the schema"]);
  assert.ok(!isOutput([good]));
});

test("which failures are transient", () => {
  const http = (status: number) => Object.assign(new Error("x"), { response: { status } });
  assert.deepEqual([409, 429, 500, 503].map((s) => isTransient(http(s))), [true, true, true, true]);
  assert.deepEqual([400, 404, 422].map((s) => isTransient(http(s))), [false, false, false]);
  assert.equal(isTransient(new TypeError("fetch failed")), true);
  assert.equal(isTransient(new TypeError("x is not a function")), false);
  assert.equal(isTransient(new Error("Prediction failed: boom")), false);
});
