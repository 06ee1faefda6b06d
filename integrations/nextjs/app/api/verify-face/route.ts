// App Router route handler: POST /api/verify-face with {idImage, selfieImage}, two base64 data URIs
// -> {verified, similarity, reason, message}. Configure with REPLICATE_API_TOKEN and either
// FACE_MODEL_VERSION ("owner/model:version") or FACE_MODEL_DEPLOYMENT ("owner/name");
// REPLICATE_BASE_URL points the client elsewhere (the local Cog server, or the tests' stand-in).
// lib/authorize.ts is the place for the app's authentication and rate limiting.
import Replicate from "replicate";

import { authorize } from "../../../lib/authorize.js";
import { DEFAULT_TIMEOUT_MS, handleVerifyFace } from "../../../lib/verify-face.js";

/** Node.js runtime: the Replicate client and the body cap use Node's fetch and streams. */
export const runtime = "nodejs";
/** Seconds the platform lets this route run (Vercel and similar honour it); verifyFace() gives up
 * after DEFAULT_TIMEOUT_MS (45 s) and answers 504 with its own sentence before that. */
export const maxDuration = 60;
export const dynamic = "force-dynamic";

const replicate = new Replicate({
  auth: process.env.REPLICATE_API_TOKEN,
  baseUrl: process.env.REPLICATE_BASE_URL || undefined,
  // Outputs are plain JSON values, not FileOutput streams.
  useFileOutput: false,
});

export async function POST(request: Request): Promise<Response> {
  return handleVerifyFace(request, {
    replicate,
    model: process.env.FACE_MODEL_VERSION || undefined,
    deployment: process.env.FACE_MODEL_DEPLOYMENT || undefined,
    timeoutMs: Number(process.env.FACE_VERIFY_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS,
    authorize,
  });
}
