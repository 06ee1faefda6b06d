// The app's gate in front of POST /api/verify-face: every call spends the Replicate budget, so
// only the app's own signed-in users should reach it, at a bounded rate. Replace the body of
// authorize() with the app's session check (cookies, a JWT, ...) and a shared rate limiter (Redis,
// Upstash, the platform's firewall); the one here is a per-process fixed window, a floor only, as
// each server instance keeps its own count.
/** Requests per client (by IP address) per minute; VERIFY_FACE_RATE_LIMIT overrides (0: no limit). */
export const RATE_LIMIT_PER_MINUTE = 20;

export interface RateLimiter {
  /** True when one more request from `client` is within the limit (and counts it). */
  allow(client: string, now?: number): boolean;
}

/** A fixed one-minute window per client, kept in this process's memory. */
export function fixedWindowLimiter(limit: number, windowMs = 60_000): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    allow(client, now = Date.now()) {
      const window = windows.get(client);
      if (!window || now - window.start >= windowMs) {
        if (windows.size > 10_000) windows.clear();
        windows.set(client, { start: now, count: 1 });
        return true;
      }
      window.count += 1;
      return window.count <= limit;
    },
  };
}

/** The client's address as the proxy in front of the app reports it. */
export function clientOf(request: Request): string {
  return request.headers.get("x-forwarded-for")?.split(",")[0].trim() || request.headers.get("x-real-ip") || "unknown";
}

/** An authorize() hook that refuses a client over `limit` requests a minute with 429 and a sentence. */
export function rateLimited(limit: number): (request: Request) => Response | null {
  const limiter = fixedWindowLimiter(limit);
  return (request) =>
    limit > 0 && !limiter.allow(clientOf(request))
      ? Response.json(
          { verified: false, similarity: null, reason: "rate_limited", message: "Too many attempts. Please wait a minute and try again." },
          { status: 429, headers: { "Retry-After": "60" } },
        )
      : null;
}

const limit = process.env.VERIFY_FACE_RATE_LIMIT === undefined ? RATE_LIMIT_PER_MINUTE : Number(process.env.VERIFY_FACE_RATE_LIMIT);

/** The hook the route calls first: a Response stops the request, null lets it through. */
export const authorize: (request: Request) => Response | null | Promise<Response | null> = rateLimited(limit);
