// verifyFace(): compare the photo on an ID document with a selfie through the face verification
// model on Replicate, and say whether the app may treat them as the same person.
//
// - Calls a pinned model version ("owner/name:version") or a deployment ("owner/name").
// - Takes the app's two base64 data URIs. One of at most INLINE_LIMIT characters goes inline, as
//   Replicate accepts data URIs of up to 256 KB; a larger one is uploaded through Replicate's Files
//   API and sent as its URL, and deleted again once the prediction has ended, whatever the outcome
//   (`upload: false` uploads nothing and answers `image<N>_too_large` instead).
// - Fails closed on the model's contract, not on one field: `verified` only for a well-formed,
//   consistent output (match true, no error_code or error, similarity at or above the threshold, a
//   face in each image), and by default never for a selfie with another face in it.
// - Bounds the whole call in time (`timeoutMs`): a prediction still running then is cancelled.
// - Retries transient failures (HTTP 409 busy, 429, 5xx, network errors) a bounded number of times.
// - Maps each reason to a sentence the app can show.
import { outputSchema, type Input, type Output } from "./generated/openapi.js";

/** A pinned model version, "owner/name:version": the output types belong to it. */
export type ModelRef = `${string}/${string}:${string}`;
/** A Replicate deployment, "owner/name": its own hardware and instances, running a version. */
export type DeploymentRef = `${string}/${string}`;

/** A prediction as Replicate's HTTP API (and a Cog server) answers it; only what is read here. */
export interface Prediction {
  id?: string | null;
  status: string;
  output?: unknown;
  error?: unknown;
}

/** A file uploaded through Replicate's Files API; only what is read here. */
export interface UploadedFile {
  id: string;
  urls: { get: string };
}

type Signal = { signal?: AbortSignal };

/** The parts of the Replicate JavaScript client (`new Replicate(...)`, replicate 1.4.0) that
 * verifyFace() uses. */
export interface ReplicateClient {
  predictions: {
    create(options: { version: string; input: object; wait?: number | boolean } & Signal): Promise<Prediction>;
    get(id: string, options?: Signal): Promise<Prediction>;
    cancel(id: string, options?: Signal): Promise<Prediction>;
  };
  deployments: {
    predictions: {
      create(owner: string, name: string, options: { input: object; wait?: number | boolean } & Signal): Promise<Prediction>;
    };
  };
  files: {
    create(file: Blob, metadata?: Record<string, unknown>, options?: Signal): Promise<UploadedFile>;
    delete(id: string, options?: Signal): Promise<boolean>;
  };
}

/** Data URIs up to this many characters are sent inline; larger ones are uploaded. Replicate's
 * HTTP API reference allows data URIs of up to 256 KB; the whole URI is counted, to be safe. */
export const INLINE_LIMIT = 256_000;

/** Default bound on one verification, retries and polling included (ms): under the route's
 * `maxDuration` (60 s), so the app answers before the platform cuts the request. */
export const DEFAULT_TIMEOUT_MS = 45_000;

/** Why a verification failed: a model `error_code` such as "image2_no_face", or "no_match",
 * "image2_multiple_faces", "timeout", "unexpected_output", "request_rejected" or
 * "service_unavailable". */
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
  replicate: ReplicateClient;
  /** The pinned version to run; give this or `deployment`. */
  model?: ModelRef;
  /** The deployment to run ("owner/name"); give this or `model`. */
  deployment?: DeploymentRef;
  /** Similarity needed for a match, 0 to 1; left out, the model's calibrated default applies. */
  threshold?: number;
  /** Calls made at most, the first included (default 3). */
  maxAttempts?: number;
  /** Wait before the first retry in ms, doubled for each further one (default 500). */
  retryDelayMs?: number;
  /** See INLINE_LIMIT. */
  inlineLimit?: number;
  /** False: never upload; an image over `inlineLimit` gets `image<N>_too_large` (default true:
   * upload it, and delete it once the prediction has ended). */
  upload?: boolean;
  /** Bound on the whole verification in ms (default DEFAULT_TIMEOUT_MS); then `timeout`. */
  timeoutMs?: number;
  /** How often a prediction still running is polled, in ms (default 500). */
  pollIntervalMs?: number;
  /** Refuse a selfie with any quality issue (blurry, too dark, ...) as `image2_poor_quality`,
   * with a message asking for a better one; left out, issues are only reported by the model. */
  requireSelfieQuality?: boolean;
  /** True: accept a match although the model reports `multiple_faces` for the selfie. Default
   * false: such a selfie is refused as `image2_multiple_faces` (whose face was compared is then
   * a guess, and a KYC decision on a guess is not a decision). */
  allowMultipleFaces?: boolean;
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
  // The two KYC checks concern the selfie only (image2_same_photo, image2_multiple_faces); the kit
  // also answers image2_multiple_faces itself for a match with multiple_faces in the selfie.
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
  timeout: "Checking your photos took too long. Please try again.",
  unknown_problem: "We could not check your photos. Please retake them and try again.",
} as const;

/** The sentence to show for a model `error_code` such as "image2_no_face"; for "image2_poor_quality",
 * the sentence of the first of that image's quality `issues` that has one. */
export function messageFor(errorCode: string, issues: readonly string[] = []): string {
  const match = /^image([12])_(.+)$/.exec(errorCode);
  const known = match?.[2] === "poor_quality" ? issues.find((issue) => Object.hasOwn(QUALITY_MESSAGES, issue)) : undefined;
  const messages = known ? QUALITY_MESSAGES[known] : match && Object.hasOwn(PROBLEM_MESSAGES, match[2]) ? PROBLEM_MESSAGES[match[2]] : undefined;
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

function refused(reason: Reason, message: string, detail?: string): FaceVerification {
  // The detail is cut short: an error may quote the request, and logs must not hold image data.
  return { verified: false, similarity: null, reason, message, ...(detail ? { detail: detail.slice(0, 300) } : {}) };
}

/** Where the output breaks the model's own contract, or null when it keeps it. An answer with an
 * error_code must not match; one without must have no error, a similarity, both faces, and `match`
 * exactly when the similarity reaches the threshold (the one asked for, if one was). */
export function contractBreach(output: Output, threshold?: number): string | null {
  const code = output.error_code;
  if (typeof code === "string" && code !== "") return output.match === false ? null : `match is ${output.match} with error_code ${code}`;
  if (code !== null) return `error_code is ${JSON.stringify(code)}, not null or a code`;
  if (output.error !== null) return "error is set without an error_code";
  if (typeof output.similarity !== "number") return "no similarity without an error_code";
  if (threshold !== undefined && output.threshold !== threshold) return `threshold ${output.threshold} answered, ${threshold} asked`;
  if (output.match !== output.similarity >= output.threshold) {
    return `match is ${output.match} at similarity ${output.similarity} and threshold ${output.threshold}`;
  }
  if (!(output.image1_face_count >= 1 && output.image2_face_count >= 1)) {
    return `face counts ${output.image1_face_count} and ${output.image2_face_count} with a comparison`;
  }
  return null;
}

/** The answer for a model output: fail closed on anything unexpected or inconsistent. */
export function judge(output: unknown, options: Pick<VerifyFaceOptions, "threshold" | "allowMultipleFaces"> = {}): FaceVerification {
  const errors = schemaErrors(outputSchema, output);
  if (errors.length > 0) return refused("unexpected_output", MESSAGES.unavailable, errors.join("; "));
  const result = output as Output;
  const breach = contractBreach(result, options.threshold);
  if (breach) return refused("unexpected_output", MESSAGES.unavailable, breach);
  const similarity = result.similarity ?? null;
  if (result.error_code) {
    const issues = result.error_code.startsWith("image1_") ? result.image1_quality_issues : result.image2_quality_issues;
    return { verified: false, similarity, reason: result.error_code, message: messageFor(result.error_code, issues) };
  }
  if (result.match !== true) return { verified: false, similarity, reason: "no_match", message: MESSAGES.no_match };
  if (!options.allowMultipleFaces && result.image2_quality_issues.includes("multiple_faces")) {
    return { verified: false, similarity, reason: "image2_multiple_faces", message: messageFor("image2_multiple_faces") };
  }
  return { verified: true, similarity, reason: null, message: null };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

const FINISHED = new Set(["succeeded", "failed", "canceled", "aborted"]);

/** Clean-up calls get their own short bound: they run after the verification's own has passed. */
const CLEANUP_MS = 10_000;

/** Compare the ID document's photo (`idImage`) with the selfie (`selfieImage`), both base64 data
 * URIs. Never throws for a service or image problem: the answer is then `verified: false`. Files
 * uploaded for it are deleted, and a prediction left running is cancelled, before it returns. */
export async function verifyFace(idImage: string, selfieImage: string, options: VerifyFaceOptions): Promise<FaceVerification> {
  const { replicate, model, deployment, threshold, maxAttempts = 3, retryDelayMs = 500, inlineLimit = INLINE_LIMIT,
    upload = true, timeoutMs = DEFAULT_TIMEOUT_MS, pollIntervalMs = 500, requireSelfieQuality } = options;
  if (Boolean(model) === Boolean(deployment)) throw new Error("verifyFace: give exactly one of model and deployment");
  const images: Record<"image1" | "image2", Transport | null> = {
    image1: chooseTransport(idImage, inlineLimit),
    image2: chooseTransport(selfieImage, inlineLimit),
  };
  for (const [name, transport] of Object.entries(images)) {
    if (!transport) return refused(`${name}_invalid`, messageFor(`${name}_invalid`));
    if (transport.kind === "upload" && !upload) return refused(`${name}_too_large`, messageFor(`${name}_too_large`));
  }

  const signal = AbortSignal.timeout(timeoutMs);
  const deadline = Date.now() + timeoutMs;
  const uploaded: string[] = [];
  let running: string | null = null;
  try {
    const input: Omit<Input, "image1" | "image2"> & { image1: string; image2: string } = { image1: "", image2: "" };
    for (const name of ["image1", "image2"] as const) {
      const transport = images[name]!;
      if (transport.kind === "inline") {
        input[name] = transport.value;
      } else {
        const file = await replicate.files.create(transport.value, {}, { signal });
        uploaded.push(file.id);
        input[name] = file.urls.get;
      }
    }
    if (threshold !== undefined) input.threshold = threshold;
    if (requireSelfieQuality) input.require_selfie_quality = true;

    let prediction: Prediction;
    for (let attempt = 1; ; attempt++) {
      try {
        // Replicate holds the request open up to `wait` seconds (at most 60) for the answer.
        const wait = Math.min(60, Math.max(1, Math.ceil((deadline - Date.now()) / 1000)));
        if (deployment) {
          const [owner, name] = deployment.split("/");
          prediction = await replicate.deployments.predictions.create(owner, name, { input, wait, signal });
        } else {
          prediction = await replicate.predictions.create({ version: model!.slice(model!.indexOf(":") + 1), input, wait, signal });
        }
        break;
      } catch (error) {
        if (signal.aborted) throw error;
        const detail = error instanceof Error ? error.message : String(error);
        if (!isTransient(error)) return refused("request_rejected", MESSAGES.unavailable, detail);
        if (attempt >= maxAttempts) return refused("service_unavailable", MESSAGES.unavailable, detail);
        await sleep(retryDelayMs * 2 ** (attempt - 1), signal);
      }
    }
    running = prediction.id ?? null;
    while (!FINISHED.has(prediction.status)) {
      if (!running) return refused("unexpected_output", MESSAGES.unavailable, `prediction ${prediction.status} without an id`);
      await sleep(pollIntervalMs, signal);
      prediction = await replicate.predictions.get(running, { signal });
    }
    running = null;
    if (prediction.status === "failed") return refused("request_rejected", MESSAGES.unavailable, `prediction failed: ${String(prediction.error)}`);
    if (prediction.status !== "succeeded") return refused("service_unavailable", MESSAGES.unavailable, `prediction ${prediction.status}`);
    return judge(prediction.output, options);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    if (signal.aborted) return refused("timeout", MESSAGES.timeout, `no answer within ${timeoutMs} ms`);
    if (isTransient(error)) return refused("service_unavailable", MESSAGES.unavailable, detail);
    return refused("request_rejected", MESSAGES.unavailable, detail);
  } finally {
    await cleanUp(replicate, running, uploaded);
  }
}

/** Cancel a prediction left running and delete every uploaded file; a failure is logged (with
 * ids only), never thrown, as the answer stands either way. */
async function cleanUp(replicate: ReplicateClient, running: string | null, uploaded: string[]): Promise<void> {
  const signal = AbortSignal.timeout(CLEANUP_MS);
  const tasks: Promise<unknown>[] = uploaded.map((id) =>
    replicate.files.delete(id, { signal }).catch((error) => console.error(`verify-face: could not delete uploaded file ${id}: ${error}`)),
  );
  if (running) {
    const id = running;
    tasks.push(replicate.predictions.cancel(id, { signal }).catch((error) => console.error(`verify-face: could not cancel prediction ${id}: ${error}`)));
  }
  await Promise.all(tasks);
}

/** Default cap on a request body: two images sent inline take about 0.5 MB. */
export const MAX_BODY_BYTES = 2_000_000;

/** The app's own gate, run before anything else: answer a Response (401, 403, 429, ...) to stop
 * the request there, or nothing to let it through. Put authentication and rate limiting here; read
 * headers and cookies only (the body is read once, afterwards, under the size cap). */
export type Authorize = (request: Request) => Response | null | undefined | Promise<Response | null | undefined>;

export interface HandleOptions extends Omit<VerifyFaceOptions, "model" | "deployment"> {
  /** "owner/name:version" (FACE_MODEL_VERSION); or give `deployment`. */
  model?: string;
  /** "owner/name" (FACE_MODEL_DEPLOYMENT); used when `model` is not set. */
  deployment?: string;
  /** See Authorize; left out, every request is let through. */
  authorize?: Authorize;
  /** Bodies over this many bytes get 413 (default MAX_BODY_BYTES). */
  maxBodyBytes?: number;
}

const answer = (status: number, reason: string, message: string) =>
  Response.json({ verified: false, similarity: null, reason, message }, { status });

/** The request's body as text, or null when it is over `limit` bytes (read no further). */
async function boundedText(request: Request, limit: number): Promise<string | null> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) return null;
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** The route handler's work, with plain Web Request/Response: POST {idImage, selfieImage} (two
 * base64 data URIs) -> {verified, similarity, reason, message}. 200 for an answer (verified or
 * not); the app's `authorize` answer when it stops the request; 400 for a malformed request; 413
 * for a body over the cap; 502 when the service refused the request or answered something
 * unexpected; 503 when it could not be reached; 504 when it took longer than `timeoutMs`; 500
 * when no model or deployment is configured. */
export async function handleVerifyFace(request: Request, options: HandleOptions): Promise<Response> {
  const { model, deployment, authorize, maxBodyBytes = MAX_BODY_BYTES, ...rest } = options;
  const stopped = authorize ? await authorize(request) : null;
  if (stopped) return stopped;
  const target = model
    ? /^[^/\s]+\/[^/:\s]+:\S+$/.test(model) ? { model: model as ModelRef } : null
    : deployment && /^[^/\s:]+\/[^/:\s]+$/.test(deployment) ? { deployment: deployment as DeploymentRef } : null;
  if (!target) return answer(500, "not_configured", MESSAGES.unavailable);
  const text = await boundedText(request, maxBodyBytes);
  if (text === null) return answer(413, "too_large", "The photos are too large to send. Please use smaller photos.");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const { idImage, selfieImage } = (body ?? {}) as Record<string, unknown>;
  if (typeof idImage !== "string" || typeof selfieImage !== "string") {
    return answer(400, "bad_request", "Send idImage and selfieImage as data URIs.");
  }
  const result = await verifyFace(idImage, selfieImage, { ...rest, ...target });
  const status = { service_unavailable: 503, request_rejected: 502, unexpected_output: 502, timeout: 504 }[result.reason ?? ""] ?? 200;
  const { detail, ...reply } = result;
  if (detail) console.error(`verify-face: ${result.reason}: ${detail}`);
  return Response.json(reply, { status });
}
