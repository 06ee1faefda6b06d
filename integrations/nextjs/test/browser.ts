// The page in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
// against the built app (`next start`), whose route calls the real local Cog server. Chromium's
// fake camera plays a .y4m made from a real photo (tests/test_nextjs_browser.py writes it), so the
// selfie is taken through getUserMedia as a person's would be.
//
// Usage: node build/test/browser.js CASES.json RESULTS.json, where CASES.json is a list of
// BrowserCase; run by tests/test_nextjs_browser.py, which asserts on RESULTS.json.
import { readFileSync, writeFileSync } from "node:fs";

import { chromium } from "playwright-core";

export interface BrowserCase {
  name: string;
  /** The built app's address. */
  app: string;
  /** The ID document's photo, chosen in the file input. */
  document: string;
  /** The camera's picture (.y4m), or null for no camera: the selfie is then `selfieFile`. */
  camera: string | null;
  selfieFile?: string;
  screenshot: string;
}

export interface BrowserResult {
  name: string;
  /** How the selfie was taken, and the camera's frame size when it was live. */
  selfieFrom: "camera" | "file";
  cameraSize: [number, number] | null;
  cameraUnavailableShown: boolean;
  verified: string | null;
  reason: string | null;
  message: string | null;
  heading: string | null;
  /** Bytes of each data URI the page sent, and the size of each image in it. */
  sent: { idImage: number; selfieImage: number; idSize: [number, number]; selfieSize: [number, number] } | null;
  status: number | null;
  /** Where the two photos are shown on the screenshot, [x, y, width, height] (to blur them). */
  photoBoxes: [number, number, number, number][];
  error?: string;
}

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

async function runCase(item: BrowserCase): Promise<BrowserResult> {
  const args = ["--use-fake-ui-for-media-stream"];
  if (item.camera) args.push("--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${item.camera}`);
  const browser = await chromium.launch({ executablePath, headless: true, args });
  const result: BrowserResult = {
    name: item.name, selfieFrom: item.camera ? "camera" : "file", cameraSize: null, cameraUnavailableShown: false,
    verified: null, reason: null, message: null, heading: null, sent: null, status: null, photoBoxes: [],
  };
  try {
    const page = await browser.newPage({ viewport: { width: 640, height: 1000 } });
    let sentImages: { idImage: string; selfieImage: string } | null = null;
    page.on("request", (request) => {
      if (!request.url().endsWith("/api/verify-face")) return;
      const body = JSON.parse(request.postData() ?? "{}") as { idImage: string; selfieImage: string };
      result.sent = { idImage: body.idImage.length, selfieImage: body.selfieImage.length, idSize: [0, 0], selfieSize: [0, 0] };
      sentImages = body;
    });
    page.on("response", (response) => {
      if (response.url().endsWith("/api/verify-face")) result.status = response.status();
    });
    await page.goto(item.app, { waitUntil: "networkidle" });
    await page.getByTestId("document-input").setInputFiles(item.document);
    await page.getByTestId("document-preview").waitFor();
    await page.getByTestId("start-camera").click();
    if (item.camera) {
      // A wrong .y4m path gives no camera and no error: check that frames of the file's size arrive.
      await page.waitForSelector('[data-camera="live"]', { timeout: 15_000 });
      await page.waitForFunction(() => (document.querySelector("video")?.videoWidth ?? 0) > 0 && (document.querySelector("video")?.currentTime ?? 0) > 0);
      result.cameraSize = await page.evaluate(() => {
        const video = document.querySelector("video")!;
        return [video.videoWidth, video.videoHeight] as [number, number];
      });
      await page.getByTestId("take-selfie").click();
    } else {
      await page.getByTestId("camera-unavailable").waitFor({ timeout: 15_000 });
      result.cameraUnavailableShown = true;
      await page.getByTestId("selfie-input").setInputFiles(item.selfieFile!);
    }
    await page.getByTestId("selfie-preview").waitFor();
    await page.getByTestId("send").click();
    const answer = page.getByTestId("result");
    await answer.waitFor({ timeout: 60_000 });
    result.verified = await answer.getAttribute("data-verified");
    result.reason = await answer.getAttribute("data-reason");
    result.message = await page.getByTestId("result-message").textContent();
    result.heading = await answer.locator("h2").textContent();
    if (result.sent && sentImages) {
      const images = sentImages as { idImage: string; selfieImage: string };
      const sizes = await page.evaluate(async ({ idImage, selfieImage }) => {
        const size = async (uri: string) => {
          const bitmap = await createImageBitmap(await (await fetch(uri)).blob());
          return [bitmap.width, bitmap.height] as [number, number];
        };
        return [await size(idImage), await size(selfieImage)];
      }, images);
      result.sent.idSize = sizes[0];
      result.sent.selfieSize = sizes[1];
    }
    await answer.scrollIntoViewIfNeeded();
    await page.screenshot({ path: item.screenshot, fullPage: true });
    result.photoBoxes = await page.evaluate(() =>
      ["document-preview", "selfie-preview"].flatMap((id) => {
        const box = document.querySelector(`[data-testid="${id}"]`)?.getBoundingClientRect();
        return box ? [[box.x + window.scrollX, box.y + window.scrollY, box.width, box.height] as [number, number, number, number]] : [];
      }),
    );
  } catch (error) {
    result.error = error instanceof Error ? error.stack ?? error.message : String(error);
  } finally {
    await browser.close();
  }
  return result;
}

async function main(): Promise<void> {
  const [casesPath, resultsPath] = process.argv.slice(2);
  const cases = JSON.parse(readFileSync(casesPath, "utf8")) as BrowserCase[];
  const results: BrowserResult[] = [];
  for (const item of cases) {
    const started = Date.now();
    results.push(await runCase(item));
    const last = results.at(-1)!;
    console.error(`browser: ${item.name}: ${last.error ? "error" : last.reason || "verified"} in ${Date.now() - started} ms`);
  }
  writeFileSync(resultsPath, JSON.stringify(results, null, 2));
}

await main();
