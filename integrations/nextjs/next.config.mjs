// Next.js configuration: no telemetry header, no "X-Powered-By", strict React.
/** @type {import("next").NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
};

export default nextConfig;
