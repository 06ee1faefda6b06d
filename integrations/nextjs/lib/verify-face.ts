// verifyFace(): compare the photo on an ID document with a selfie through the face verification
// model on Replicate, and say whether the app may treat them as the same person.
//
// - Takes the app's two base64 data URIs. One of at most INLINE_LIMIT characters goes inline, as
//   Replicate accepts data URIs of up to 256 KB; a larger one goes as a Blob, which the Replicate
//   client uploads through Replicate's Files API (up to 100 MB) and sends as a URL.
// - Checks every output against the model's Output schema (generated/openapi.ts, generated from
//   the committed OpenAPI schema) and fails closed on anything unexpected: `verified` is true only
//   for a well-formed output with `match: true` and no `error_code`.
// - Retries transient failures (HTTP 409 busy, 429, 5xx, network errors) a bounded number of times.
// - Maps each `error_code` to a sentence the app can show; with `requireSelfieQuality`, a selfie
//   with a quality issue is refused (`image2_poor_quality`) with a sentence naming the issue.
import { outputSchema, type Input, type Output } from "./generated/openapi.js";

/** A model version, "owner/name:version". Pin the version: the output types belong to it. */
export type ModelRef = `${string}/${string}:${string}`;

/** The one method of the Replicate client that verifyFace() uses (`new Replicate(...)`). */
export interface ReplicateRunner {
  run(identifier: ModelRef, options: { input: object }): Promise<object>;
}

/** Data URIs up to this many characters are sent inline; larger ones are uploaded. Replicate's
 * HTTP API reference allows data URIs of up to 256 KB; the whole URI is counted, to be safe. */
export const INLINE_LIMIT = 256_000;

/** Why a verification failed: a model `error_code` such as "image2_no_face", or "no_match",
 * "unexpected_output", "request_rejected" or "service_unavailable". */
export type Reason = string;

export interface FaceVerification {
  /** True only when the model compared both faces and found them to be the same person. */
  verified: boolean;
  /** Cosine similarity of the two faces, null when no comparison was made. */
  similarity: number | null;
  /** Why `verified` is false (null when it is true). */
  reason: Reason | null;
  /** A sentence the app can show the user (null when verified). */
  message: string | null;
  /** For the app's logs, never for the user: what went wrong with the service. */
  detail?: string;
}

export interface VerifyFaceOptions {
  replicate: ReplicateRunner;
  model: ModelRef;
  /** Similarity needed for a match, 0 to 1; left out, the model's calibrated default applies. */
  threshold?: number;
  /** Calls made at most, the first included (default 3). */
  maxAttempts?: number;
  /** Wait before the first retry in ms, doubled for each further one (default 500). */
  retryDelayMs?: number;
  /** See INLINE_LIMIT. */
  inlineLimit?: number;
  /** Refuse a selfie with any quality issue (blurry, too dark, ...) as `image2_poor_quality`,
   * with a message asking for a better one; left out, issues are only reported by the model. */
  requireSelfieQuality?: boolean;
}

/** What each image problem tells the user, for the ID document (image1) and the selfie (image2). */
export const PROBLEM_MESSAGES: Record<string, [document: string, selfie: string]> = {
  missing: ["Please add a photo of your ID document.", "Please take a selfie."],
  invalid: [
    "Please upload the photo of your ID document again as a JPEG or PNG: this file could not be read.",
    "Please retake your selfie: the photo could not be read.",
  ],
  too_large: ["Please upload a smaller photo of your ID document.", "Please retake your selfie: the photo is too large."],
  too_small: [
    "Please upload a larger photo of your ID document.",
    "Please retake your selfie: the photo is too small.",
  ],
  bad_aspect_ratio: [
    "Please upload a normal photo of your ID document, not a cropped strip.",
    "Please retake your selfie as a normal photo, not a cropped strip.",
  ],
  no_face: [
    "Please retake the photo of your ID document so that its portrait is visible: no face was found.",
    "Please retake your selfie: no face was found.",
  ],
  face_unusable: [
    "Please retake the photo of your ID document so that its portrait is clear and upright.",
    "Please retake your selfie facing the camera.",
  ],
  poor_quality: [
    "Please retake the photo of your ID document so that its portrait is sharp and well lit.",
    "Please retake your selfie: the photo is not clear enough.",
  ],
  // The two KYC checks concern the selfie only (image2_same_photo, image2_multiple_faces).
  same_photo: [
    "Please upload a photo of your ID document.",
    "Take a new selfie with the camera: a copy of the document's photo cannot be used.",
  ],
  multiple_faces: [
    "Please retake the photo of your ID document so that only its portrait is visible.",
    "Only you should be in the selfie. Please retake it alone.",
  ],
};

/** What each quality issue (`image1_quality_issues`, `image2_quality_issues`) tells the user, for
 * the ID document and the selfie (the repository README's "Quality issues" table). */
export const QUALITY_MESSAGES: Record<string, [document: string, selfie: string]> = {
  face_too_small: [
    "Please take the photo of your ID document closer, so that its portrait fills more of the picture.",
    "Please come closer to the camera: your face is too small.",
  ],
  face_cut_off: [
    "Please retake the photo of your ID document with its whole portrait in the picture.",
    "Please retake your selfie with your whole face in the picture.",
  ],
  head_turned: [
    "Please retake the photo of your ID document straight on.",
    "Please look straight at the camera and hold your head upright.",
  ],
  blurry: [
    "Please retake the photo of your ID document: it is blurry. Hold the camera still.",
    "Please retake your selfie: it is blurry. Hold the camera still.",
  ],
  too_dark: [
    "Please retake the photo of your ID document in better light: it is too dark.",
    "Please retake your selfie in better light: it is too dark.",
  ],
  overexposed: [
    "Please retake the photo of your ID document without glare or direct light on the portrait.",
    "Please retake your selfie out of direct light: your face is too bright.",
  ],
  multiple_faces: [
    "Please retake the photo of your ID document so that only its portrait is visible.",
    "Please retake your selfie with only you in the picture.",
  ],
};

export const MESSAGES = {
  no_match: "The selfie does not match the photo on your ID document.",
  unavailable: "We could not check your photos right now. Please try again in a few minutes.",
  unknown_problem: "We could not check your photos. Please retake them and try again.",
} as const;

/** The sentence to show for a model `error_code` such as "image2_no_face"; for "image2_poor_quality",
 * the sentence of the first of that image's quality `issues` that has one. */
export function messageFor(errorCode: string, issues: readonly string[] = []): string {
  const match = /^image([12])_(.+)$/.exec(errorCode);
  const known = match?.[2] === "poor_quality" ? issues.find((issue) => Object.hasOwn(QUALITY_MESSAGES, issue)) : undefined;
  const messages = known ? QUALITY_MESSAGES[known] : match ? PROBLEM_MESSAGES[match[2]] : undefined;
  return messages && match ? messages[Number(match[1]) - 1] : MESSAGES.unknown_problem;
}

/** How one image is sent: inline as the data URI, or as a Blob for the client to upload. */
export type Transport = { kind: "inline"; value: string } | { kind: "upload"; value: Blob };

const DATA_URI = /^data:([\w.+-]+\/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*);base64,([A-Za-z0-9+/]*={0,2})$/;

/** The inline-or-upload decision for one data URI; null when it is not a base64 data URI
 * (standard, padded base64, as the model requires). */
export function chooseTransport(dataUri: string, inlineLimit = INLINE_LIMIT): Transport | null {
  const match = DATA_URI.exec(dataUri);
  if (!match || match[3].length % 4 !== 0) return null;
  if (dataUri.length <= inlineLimit) return { kind: "inline", value: dataUri };
  const bytes = Uint8Array.from(atob(match[3]), (char) => char.charCodeAt(0));
  return { kind: "upload", value: new Blob([bytes], { type: match[1] ?? "application/octet-stream" }) };
}

/** Errors found checking `value` against a JSON schema of the kinds cog writes (OpenAPI 3.0
 * `nullable`, no extra properties allowed). Empty when it conforms. */
export function schemaErrors(schema: SchemaNode, value: unknown, where = "output"): string[] {
  if (value === null) return schema.nullable ? [] : [`${where} is null`];
  switch (schema.type) {
    case "boolean":
      return typeof value === "boolean" ? [] : [`${where} is not a boolean`];
    case "integer":
      return Number.isInteger(value) ? [] : [`${where} is not an integer`];
    case "number":
      return typeof value === "number" && Number.isFinite(value) ? [] : [`${where} is not a finite number`];
    case "string":
      return typeof value === "string" ? [] : [`${where} is not a string`];
    case "array":
      if (!Array.isArray(value)) return [`${where} is not an array`];
      return value.flatMap((item, index) => (schema.items ? schemaErrors(schema.items, item, `${where}[${index}]`) : []));
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) return [`${where} is not an object`];
      const properties = schema.properties ?? {};
      const record = value as Record<string, unknown>;
      const errors = (schema.required ?? []).filter((key) => !(key in record)).map((key) => `${where}.${key} is missing`);
      for (const [key, item] of Object.entries(record)) {
        const property = properties[key];
        errors.push(...(property ? schemaErrors(property, item, `${where}.${key}`) : [`${where}.${key} is not in the schema`]));
      }
      return errors;
    }
    default:
      return [`${where}: the schema has an unknown type`];
  }
}

export interface SchemaNode {
  readonly type?: string;
  readonly nullable?: boolean;
  readonly items?: SchemaNode;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly required?: readonly string[];
}

/** True when `value` is an Output exactly as the schema describes it. */
export function isOutput(value: unknown): value is Output {
  return schemaErrors(outputSchema, value).length === 0;
}

interface HttpError {
  response: { status: number };
}

/** HTTP 409 (the model's slots are busy), 429, 5xx and network failures are worth another try. */
export function isTransient(error: unknown): boolean {
  const status = (error as Partial<HttpError>)?.response?.status;
  if (typeof status === "number") return status === 409 || status === 429 || status >= 500;
  // fetch() rejects with a TypeError ("fetch failed") when the connection fails, and reading a
  // body whose connection dropped with "terminated".
  return error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function refused(reason: Reason, message: string, detail?: string): FaceVerification {
  // The detail is cut short: an error may quote the request, and logs must not hold image data.
  return { verified: false, similarity: null, reason, message, ...(detail ? { detail: detail.slice(0, 300) } : {}) };
}

/** Compare the ID document's photo (`idImage`) with the selfie (`selfieImage`), both base64 data
 * URIs. Never throws for a service or image problem: the answer is then `verified: false`. */
export async function verifyFace(idImage: string, selfieImage: string, options: VerifyFaceOptions): Promise<FaceVerification> {
  const { replicate, model, threshold, maxAttempts = 3, retryDelayMs = 500, inlineLimit = INLINE_LIMIT, requireSelfieQuality } = options;
  const images: Record<"image1" | "image2", Transport | null> = {
    image1: chooseTransport(idImage, inlineLimit),
    image2: chooseTransport(selfieImage, inlineLimit),
  };
  for (const [name, transport] of Object.entries(images)) {
    if (!transport) return refused(`${name}_invalid`, messageFor(`${name}_invalid`));
  }
  const input: Omit<Input, "image1" | "image2"> & { image1: string | Blob; image2: string | Blob } = {
    image1: images.image1!.value,
    image2: images.image2!.value,
    ...(threshold === undefined ? {} : { threshold }),
    ...(requireSelfieQuality ? { require_selfie_quality: true } : {}),
  };

  let output: unknown;
  for (let attempt = 1; ; attempt++) {
    try {
      output = await replicate.run(model, { input });
      break;
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      if (!isTransient(error)) return refused("request_rejected", MESSAGES.unavailable, detail);
      if (attempt >= maxAttempts) return refused("service_unavailable", MESSAGES.unavailable, detail);
      await sleep(retryDelayMs * 2 ** (attempt - 1));
    }
  }

  const errors = schemaErrors(outputSchema, output);
  if (errors.length > 0) return refused("unexpected_output", MESSAGES.unavailable, errors.join("; "));
  const result = output as Output;
  const similarity = result.similarity ?? null;
  if (result.error_code) {
    const issues = result.error_code.startsWith("image1_") ? result.image1_quality_issues : result.image2_quality_issues;
    return { verified: false, similarity, reason: result.error_code, message: messageFor(result.error_code, issues) };
  }
  if (result.match !== true || similarity === null) return { verified: false, similarity, reason: "no_match", message: MESSAGES.no_match };
  return { verified: true, similarity, reason: null, message: null };
}

/** The route handler's work, with plain Web Request/Response: POST {idImage, selfieImage} (two
 * base64 data URIs) -> {verified, similarity, reason, message}. 200 for an answer (verified or
 * not), 400 for a malformed request, 503 when the service could not be reached, 502 when it
 * refused the request or answered something unexpected, 500 when the model is not configured. */
export async function handleVerifyFace(
  request: Request,
  options: Omit<VerifyFaceOptions, "model"> & { model: string | undefined },
): Promise<Response> {
  const { model, ...rest } = options;
  if (!model || !/^[^/]+\/[^/:]+:.+$/.test(model)) {
    return Response.json({ verified: false, reason: "not_configured", message: MESSAGES.unavailable }, { status: 500 });
  }
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    body = null;
  }
  const { idImage, selfieImage } = (body ?? {}) as Record<string, unknown>;
  if (typeof idImage !== "string" || typeof selfieImage !== "string") {
    return Response.json(
      { verified: false, reason: "bad_request", message: "Send idImage and selfieImage as data URIs." },
      { status: 400 },
    );
  }
  const result = await verifyFace(idImage, selfieImage, { ...rest, model: model as ModelRef });
  const status = result.reason === "service_unavailable" ? 503 : result.reason === "request_rejected" || result.reason === "unexpected_output" ? 502 : 200;
  const { detail, ...answer } = result;
  if (detail) console.error(`verify-face: ${result.reason}: ${detail}`);
  return Response.json(answer, { status });
}
