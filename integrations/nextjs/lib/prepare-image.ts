// In the browser: an image made smaller before it is sent, so that both usually go inline as data
// URIs (Replicate takes data URIs of up to 256 KB each). Sizes chosen by measurement
// (integrations/nextjs/README.md, "Image sizes"): an ID document needs more pixels than a selfie,
// as its portrait is about a fifth of the card's width.

/** Longest side, in pixels, the page sends for each image. */
export const LONGEST_SIDE = { document: 1600, selfie: 800 } as const;

/** JPEG bytes that keep the data URI under verifyFace()'s INLINE_LIMIT (256,000 characters). */
export const MAX_JPEG_BYTES = 190_000;

/** JPEG qualities tried in turn: 0.85 first, the quality measured (README, "Image sizes"). */
const QUALITIES = [0.85, 0.75, 0.65];

/** A canvas holding `source` (`width` x `height` pixels) scaled down (never up) to `longest` pixels on its longest side. */
export function scaledCanvas(source: CanvasImageSource, width: number, height: number, longest: number): HTMLCanvasElement {
  const factor = Math.min(1, longest / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width * factor));
  canvas.height = Math.max(1, Math.round(height * factor));
  const context = canvas.getContext("2d");
  if (!context) throw new Error("no 2D canvas");
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  return canvas;
}

const toBlob = (canvas: HTMLCanvasElement, quality: number) =>
  new Promise<Blob>((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("JPEG encoding failed"))), "image/jpeg", quality));

const asDataUri = (blob: Blob) =>
  new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });

/** A JPEG data URI of `source` at most `longest` pixels on a side: the highest quality that fits
 * MAX_JPEG_BYTES, and a smaller size if none does (the last try is sent whatever its size). */
export async function prepareImage(source: CanvasImageSource & { width: number; height: number }, longest: number): Promise<string> {
  let blob: Blob | null = null;
  for (let side = longest; side >= 320; side = Math.round(side * 0.8)) {
    const canvas = scaledCanvas(source, source.width, source.height, side);
    for (const quality of QUALITIES) {
      blob = await toBlob(canvas, quality);
      if (blob.size <= MAX_JPEG_BYTES) return asDataUri(blob);
    }
  }
  return asDataUri(blob!);
}

/** A file the person chose, decoded upright (EXIF orientation applied). */
export function decodeFile(file: Blob): Promise<ImageBitmap> {
  return createImageBitmap(file, { imageOrientation: "from-image" });
}
