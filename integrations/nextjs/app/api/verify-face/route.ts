// App Router route handler: POST /api/verify-face with {idImage, selfieImage}, two base64 data URIs
// (what the old FastAPI service took) -> {verified, similarity, reason, message}.
// Copy app/api/verify-face/route.ts and lib/ (with lib/generated/) into the app, and set
// REPLICATE_API_TOKEN and FACE_MODEL_VERSION ("owner/model:version"). REPLICATE_BASE_URL is only
// for tests against a local Cog server. Runs on the Node.js runtime; Next.js need not be installed
// to type-check or test it, as it uses only the Web Request/Response.
import Replicate from "replicate";

import { handleVerifyFace } from "../../../lib/verify-face.js";

const replicate = new Replicate({
  auth: process.env.REPLICATE_API_TOKEN,
  baseUrl: process.env.REPLICATE_BASE_URL || undefined,
  // Large images go as Blobs: upload them, and fail rather than fall back to inline data URIs.
  fileEncodingStrategy: "upload",
  // Outputs are plain JSON values, not FileOutput streams.
  useFileOutput: false,
});

export async function POST(request: Request): Promise<Response> {
  return handleVerifyFace(request, { replicate, model: process.env.FACE_MODEL_VERSION });
}
