"use client";
// The page a person sees: add a photo of the ID document, take a selfie with the camera (or choose a
// photo when there is no camera), send both, read the answer. Both images are made smaller in the
// browser first (lib/prepare-image.ts), so that they go inline to the model.
import { useEffect, useRef, useState, type ChangeEvent, type CSSProperties } from "react";

import { decodeFile, LONGEST_SIDE, prepareImage, scaledCanvas } from "../lib/prepare-image.js";

/** What the route answers (lib/verify-face.ts, FaceVerification without `detail`). */
interface Answer {
  verified: boolean;
  similarity: number | null;
  reason: string | null;
  message: string | null;
}

type Image = { source: ImageBitmap | HTMLCanvasElement; preview: string };

const card: CSSProperties = { background: "white", borderRadius: 12, padding: 20, margin: "16px 0", boxShadow: "0 1px 3px #0002" };
const button: CSSProperties = { padding: "10px 18px", borderRadius: 8, border: "none", background: "#2456d6", color: "white", fontSize: 16, cursor: "pointer" };
const thumb: CSSProperties = { display: "block", maxWidth: "100%", maxHeight: 220, marginTop: 12, borderRadius: 8 };

/** Sentence shown when the app's own server cannot be reached or answers something that is not JSON. */
const UNREACHABLE = "We could not check your photos right now. Please try again in a few minutes.";

export function VerifyPage() {
  const [idDocument, setIdDocument] = useState<Image | null>(null);
  const [selfie, setSelfie] = useState<Image | null>(null);
  const [camera, setCamera] = useState<"off" | "starting" | "live" | "unavailable">("off");
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<Answer | null>(null);
  const video = useRef<HTMLVideoElement>(null);
  const stream = useRef<MediaStream | null>(null);

  const stopCamera = () => {
    stream.current?.getTracks().forEach((track) => track.stop());
    stream.current = null;
    setCamera((state) => (state === "live" || state === "starting" ? "off" : state));
  };
  useEffect(() => stopCamera, []);

  const chooseFile = (set: (image: Image) => void) => async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    if (!file) return;
    setAnswer(null);
    try {
      set({ source: await decodeFile(file), preview: URL.createObjectURL(file) });
    } catch {
      setAnswer({ verified: false, similarity: null, reason: "unreadable", message: "This file could not be read as a photo. Please choose a JPEG or PNG." });
    }
  };

  const startCamera = async () => {
    setAnswer(null);
    setCamera("starting");
    try {
      const media = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
      stream.current = media;
      if (video.current) {
        video.current.srcObject = media;
        await video.current.play();
      }
      setCamera("live");
    } catch {
      setCamera("unavailable");
    }
  };

  const takeSelfie = () => {
    const element = video.current;
    if (!element || !element.videoWidth) return;
    const frame = scaledCanvas(element, element.videoWidth, element.videoHeight, LONGEST_SIDE.selfie);
    setSelfie({ source: frame, preview: frame.toDataURL("image/jpeg", 0.8) });
    stopCamera();
  };

  const send = async () => {
    if (!idDocument || !selfie) return;
    setBusy(true);
    setAnswer(null);
    try {
      const [idImage, selfieImage] = await Promise.all([
        prepareImage(idDocument.source, LONGEST_SIDE.document),
        prepareImage(selfie.source, LONGEST_SIDE.selfie),
      ]);
      const response = await fetch("/api/verify-face", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ idImage, selfieImage }),
      });
      const body = (await response.json().catch(() => null)) as Answer | null;
      setAnswer(body && typeof body.verified === "boolean" ? body : { verified: false, similarity: null, reason: `http_${response.status}`, message: UNREACHABLE });
    } catch {
      setAnswer({ verified: false, similarity: null, reason: "unreachable", message: UNREACHABLE });
    } finally {
      setBusy(false);
    }
  };

  return (
    <main style={{ maxWidth: 560, margin: "0 auto", padding: "24px 16px" }}>
      <h1 style={{ fontSize: 26 }}>Verify your identity</h1>
      <p>We compare the photo on your ID document with a selfie. This app stores neither photo; the checking service deletes them within an hour.</p>

      <section style={card}>
        <h2 style={{ fontSize: 18, marginTop: 0 }}>1. Your ID document</h2>
        <label htmlFor="document">Photo of the document's page or card with your portrait</label>
        <input id="document" data-testid="document-input" type="file" accept="image/*" onChange={chooseFile(setIdDocument)} style={{ display: "block", marginTop: 8 }} />
        {idDocument && <img src={idDocument.preview} alt="Your ID document" data-testid="document-preview" style={thumb} />}
      </section>

      <section style={card}>
        <h2 style={{ fontSize: 18, marginTop: 0 }}>2. A selfie</h2>
        <video ref={video} data-testid="camera" data-camera={camera} muted playsInline
          style={{ ...thumb, display: camera === "live" ? "block" : "none", transform: "scaleX(-1)" }} />
        {camera === "live" ? (
          <button type="button" data-testid="take-selfie" onClick={takeSelfie} style={button}>Take the selfie</button>
        ) : (
          <button type="button" data-testid="start-camera" onClick={startCamera} disabled={camera === "starting"} style={button}>
            {selfie ? "Take it again" : "Use the camera"}
          </button>
        )}
        {camera === "unavailable" && <p data-testid="camera-unavailable">No camera could be opened: choose a photo of your face instead.</p>}
        <label htmlFor="selfie-file" style={{ display: "block", marginTop: 12 }}>or choose a photo</label>
        <input id="selfie-file" data-testid="selfie-input" type="file" accept="image/*" capture="user" onChange={chooseFile(setSelfie)} style={{ display: "block", marginTop: 8 }} />
        {selfie && <img src={selfie.preview} alt="Your selfie" data-testid="selfie-preview" style={thumb} />}
      </section>

      <button type="button" data-testid="send" onClick={send} disabled={!idDocument || !selfie || busy} style={{ ...button, opacity: !idDocument || !selfie || busy ? 0.5 : 1 }}>
        {busy ? "Checking…" : "Check my photos"}
      </button>

      {answer && (
        <section data-testid="result" data-verified={String(answer.verified)} data-reason={answer.reason ?? ""} role="status"
          style={{ ...card, borderLeft: `6px solid ${answer.verified ? "#1a9e50" : "#d33"}` }}>
          <h2 style={{ fontSize: 20, marginTop: 0 }}>{answer.verified ? "Verified" : "Not verified"}</h2>
          <p data-testid="result-message">{answer.verified ? "Your selfie matches the photo on your ID document." : answer.message}</p>
        </section>
      )}
    </main>
  );
}
